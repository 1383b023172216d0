{#- None of `column_names` is null: dbt's `not_null` for several columns of one model in one
    query (one test node instead of one per column: each node costs dbt a connection, a
    compile and a round trip, most of a small build's time). Every failing row names the
    columns that are null in it. -#}
{% test not_null_columns(model, column_names) %}
select
    {%- for column in column_names %}
    {{ column }},
    {%- endfor %}
    concat_ws(', '
        {%- for column in column_names %},
        case when {{ column }} is null then '{{ column }}' end
        {%- endfor %}
    ) as null_columns
from {{ model }}
where
    {%- for column in column_names %}
    {% if not loop.first %}or {% endif %}{{ column }} is null
    {%- endfor %}
{% endtest %}
