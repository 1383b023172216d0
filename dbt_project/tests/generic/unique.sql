{#- dbt's `unique` (no non-null value twice), read from the catalog when a unique index on
    exactly this column guards the table (macros/unique_index_guard.sql): PostgreSQL then
    plans the grouping behind a one-time filter and never scans. Without such an index (a
    view, an unindexed table, a dropped index) every row is grouped, as in dbt's own. -#}
{% test unique(model, column_name) %}
{%- set guard = unique_index_guard(model, [column_name]) %}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if guard %}
    and not exists ({{ guard }})
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}
