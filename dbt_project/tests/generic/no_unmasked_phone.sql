{#- No value holds a clear mainland mobile number (macros/row_predicates.sql).
    On a column, or model-level on several `column_names` in one scan (one test node, one
    query); a failing row names the columns holding the number. -#}
{% test no_unmasked_phone(model, column_name=none, column_names=none) %}
{%- set columns = column_names or [column_name] -%}
select
    {%- for column in columns %}
    {{ column }},
    {%- endfor %}
    concat_ws(', '
        {%- for column in columns %},
        case when {{ unmasked_phone(column) }} then '{{ column }}' end
        {%- endfor %}
    ) as unmasked_columns
from {{ model }}
where
    {%- for column in columns %}
    {% if not loop.first %}or {% endif %}{{ unmasked_phone(column) }}
    {%- endfor %}
{% endtest %}
