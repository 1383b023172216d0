{#- The combination of columns is unique (a composite key). When a unique index on exactly
    these columns guards the table (macros/unique_index_guard.sql), only tuples with a null
    can repeat (the index holds nulls distinct, this test's grouping does not): the rows with
    a null in the key are grouped, the rest are not read again. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{%- set guard = unique_index_guard(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
{%- if guard %}
where not exists ({{ guard }})
    {%- for column in combination_of_columns %}
    or {{ column }} is null
    {%- endfor %}
{%- endif %}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
