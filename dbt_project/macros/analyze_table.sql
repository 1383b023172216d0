{#- Planner statistics for a freshly built table. Autovacuum analyzes a new table only after a
    while, so the next model in the same `dbt build` would plan its joins on empty statistics
    (nested loops over hundreds of thousands of rows: order_holographic took 543 s instead of
    4 s at 200k orders). Views have no statistics of their own: nothing to do. -#}
{% macro analyze_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
