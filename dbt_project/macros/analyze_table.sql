{#- Planner statistics for a freshly built table. Autovacuum analyzes a new table only after a
    while, so the next model in the same `dbt build` would plan its joins on empty statistics
    (nested loops over hundreds of thousands of rows: order_holographic took 543 s instead of
    4 s at 200k orders). Views have no statistics of their own: nothing to do.

    After an incremental merge only `_written_xid` is analyzed, and only when the build wrote a
    row: the rest changes little, and autovacuum re-analyzes the whole table once enough has.
    `_written_xid` must be current, because downstream models select the rows written since
    their last build by it; with stale statistics the planner would think no row qualifies and
    pick nested loops over 20,000 orders (order_holographic: 27 s instead of 3 s at 1M).
    Sampled at statistics target 10 (3,000 rows, var `written_xid_statistics_target`): the
    column holds a few build ids, and a build that wrote a few tenths of a percent of the table
    is all but sure to be sampled as a most-common value (a smaller one plans well as few);
    the default's 30,000 rows are 30,000 random pages of a large table: 1.7-2.2 s per model
    warm and 4-28 s cold at 1M orders against 0.2-0.5 s (bench/README.md).
    In a post-hook, is_incremental() is false on a first build and a full refresh.
    Views render nothing: dbt skips an empty hook (no statement, no round trip). -#}
{% macro analyze_table() -%}
    {%- set materialized = config.get('materialized') -%}
    {%- if materialized == 'table'
        or (materialized == 'incremental' and not is_incremental()) -%}
        analyze {{ this }}
    {%- elif materialized == 'incremental' -%}
        do $analyze$
        declare
            previous text := current_setting('default_statistics_target');
        begin
            -- a build that wrote nothing (a run with nothing new) leaves the statistics true:
            -- sampling 30,000 rows of each large table cost a quiet live run 4 s at 1 M orders
            if exists (select from {{ this }} where _written_xid = {{ written_xid() }}) then
                perform set_config('default_statistics_target',
                                   '{{ var("written_xid_statistics_target", 10) }}', true);
                analyze {{ this }} (_written_xid);
                perform set_config('default_statistics_target', previous, true);
            end if;
        end $analyze$
    {%- endif -%}
{%- endmacro %}
