{#- `column_names` are a key: never null, never repeated. `not_null` and
    `unique_combination_of_columns` in one test node and one scan (a staging view computes
    its JSON parsing again for each test that reads it). One row per failing key, with
    `problem` 'null' or 'duplicate' and the number of rows. -#}
{% test primary_key(model, column_names) %}
select
    {%- for column in column_names %}
    {{ column }},
    {%- endfor %}
    count(*) as n_rows,
    case
        when {% for column in column_names %}{% if not loop.first %} or {% endif %}{{ column }} is null{% endfor %}
            then 'null'
        else 'duplicate'
    end as problem
from {{ model }}
group by {{ column_names | join(', ') }}
having count(*) > 1
    {%- for column in column_names %}
    or {{ column }} is null
    {%- endfor %}
{% endtest %}
