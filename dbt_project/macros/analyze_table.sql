{#- Planner statistics for a freshly built table. Autovacuum analyzes a new table only after a
    while, so the next model in the same `dbt build` would plan its joins on empty statistics
    (nested loops over hundreds of thousands of rows: order_holographic took 543 s instead of
    4 s at 200k orders). Views have no statistics of their own: nothing to do.

    After an incremental merge only `_written_xid` is analyzed, and only when the build wrote a
    row (0.1-0.3 s at 1M rows instead of up to 1.1 s): the rest changes little, and autovacuum
    re-analyzes the whole table once enough has. `_written_xid` must be current, because downstream models select the rows
    written since their last build by it; with stale statistics the planner would think no
    row qualifies and pick nested loops over 20,000 orders (order_holographic: 27 s instead of
    3 s at 1M). In a post-hook, is_incremental() is false on a first build and a full refresh.
    Views render nothing: dbt skips an empty hook (no statement, no round trip). -#}
{% macro analyze_table() -%}
    {%- set materialized = config.get('materialized') -%}
    {%- if materialized == 'table'
        or (materialized == 'incremental' and not is_incremental()) -%}
        analyze {{ this }}
    {%- elif materialized == 'incremental' -%}
        do $analyze$ begin
            -- a build that wrote nothing (a run with nothing new) leaves the statistics true:
            -- sampling 30,000 rows of each large table cost a quiet live run 4 s at 1 M orders
            if exists (select from {{ this }} where _written_xid = {{ written_xid() }}) then
                analyze {{ this }} (_written_xid);
            end if;
        end $analyze$
    {%- endif -%}
{%- endmacro %}
