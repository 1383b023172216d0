{#- No value holds a clear mainland mobile number: 1[3-9] + 9 digits standing on its own
    (in Chinese text too), not inside a longer id such as an order or waybill number.
    On a column, or model-level on several `column_names` in one scan (one test node, one
    query); a failing row names the columns holding the number. -#}
{% test no_unmasked_phone(model, column_name=none, column_names=none) %}
{%- set columns = column_names or [column_name] -%}
{%- set pattern = "'(^|[^0-9A-Za-z])1[3-9][0-9]{9}([^0-9A-Za-z]|$)'" -%}
select
    {%- for column in columns %}
    {{ column }},
    {%- endfor %}
    concat_ws(', '
        {%- for column in columns %},
        case when {{ column }}::text ~ {{ pattern }} then '{{ column }}' end
        {%- endfor %}
    ) as unmasked_columns
from {{ model }}
where
    {%- for column in columns %}
    {% if not loop.first %}or {% endif %}{{ column }}::text ~ {{ pattern }}
    {%- endfor %}
{% endtest %}
