{#- Casts from the payloads' wire formats. Empty strings and platform "unset" sentinels
    become null instead of failing the cast. -#}

{#- A yuan amount sent as a string or number -> numeric(14,2). Export styles such as
    `1,299.00` and `￥59.9` lose their separators and currency signs first. -#}
{% macro to_yuan(expr) -%}
    round(
        nullif(regexp_replace(({{ expr }})::text, '[^0-9.eE+-]', '', 'g'), '')::numeric, 2
    )::numeric(14, 2)
{%- endmacro %}

{#- An integer fen amount sent as a string or number -> numeric(14,2) yuan. -#}
{% macro fen_text_to_yuan(expr) -%}
    {{ fen_to_yuan("nullif(trim((" ~ expr ~ ")::text), '')::numeric") }}
{%- endmacro %}

{#- 'yyyy-MM-dd HH:mm:ss' in Beijing time (no offset on the wire) -> timestamptz.
    JD sends '0001-01-01 00:00:00' for unset; strings that carry an offset keep it. -#}
{% macro beijing_ts(expr) -%}
    case
        when nullif(trim(({{ expr }})::text), '') is null then null
        when trim(({{ expr }})::text) like '0001-01-01%' then null
        when trim(({{ expr }})::text) ~ '([+-]\d{2}:?\d{2}|Z)$'
            then trim(({{ expr }})::text)::timestamptz
        else (trim(({{ expr }})::text)::timestamp at time zone 'Asia/Shanghai')
    end
{%- endmacro %}

{#- Unix seconds (string or number; 0 = unset) -> timestamptz. -#}
{% macro unix_ts(expr) -%}
    to_timestamp(nullif(nullif(trim(({{ expr }})::text), '')::bigint, 0))
{%- endmacro %}

{#- Unix milliseconds (string or number; 0 = unset) -> timestamptz. -#}
{% macro unix_ms_ts(expr) -%}
    to_timestamp(nullif(nullif(trim(({{ expr }})::text), '')::bigint, 0) / 1000.0)
{%- endmacro %}

{#- An empty string is as good as missing. -#}
{% macro nonblank(expr) -%}
    nullif(trim(({{ expr }})::text), '')
{%- endmacro %}

{#- A JSON value that may be an array, a single object or missing -> always an array,
    for `jsonb_array_elements`. -#}
{% macro as_json_array(expr) -%}
    case jsonb_typeof({{ expr }})
        when 'array' then {{ expr }}
        when 'object' then jsonb_build_array({{ expr }})
        else '[]'::jsonb
    end
{%- endmacro %}

{#- Calendar day / month in Beijing time (reports follow the merchant's local calendar). -#}
{% macro local_date(expr) -%}
    ({{ expr }} at time zone 'Asia/Shanghai')::date
{%- endmacro %}

{% macro local_month(expr) -%}
    date_trunc('month', {{ expr }} at time zone 'Asia/Shanghai')::date
{%- endmacro %}
