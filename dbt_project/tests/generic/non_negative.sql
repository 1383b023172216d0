{#- No value of the column is below zero (nulls pass; not_null says whether they may exist).
    On a column, or model-level on several `column_names` in one scan (one test node, one
    query); a failing row names its negative columns. -#}
{% test non_negative(model, column_name=none, column_names=none) %}
{%- set columns = column_names or [column_name] -%}
select
    {%- for column in columns %}
    {{ column }},
    {%- endfor %}
    concat_ws(', '
        {%- for column in columns %},
        case when {{ column }} < 0 then '{{ column }}' end
        {%- endfor %}
    ) as negative_columns
from {{ model }}
where
    {%- for column in columns %}
    {% if not loop.first %}or {% endif %}{{ column }} < 0
    {%- endfor %}
{% endtest %}
