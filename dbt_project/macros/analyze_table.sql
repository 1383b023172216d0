{#- Planner statistics for a freshly built table. Autovacuum analyzes a new table only after a
    while, so the next model in the same `dbt build` would plan its joins on empty statistics
    (nested loops over hundreds of thousands of rows: order_holographic took 543 s instead of
    4 s at 200k orders). Views have no statistics of their own: nothing to do.

    After an incremental write only `_written_xid` needs to be current, and only when the build
    wrote a row: downstream models select the rows written since their last build by it; with
    stale statistics the planner would think no row qualifies and pick nested loops over
    20,000 orders (order_holographic: 27 s instead of 3 s at 1M). The rest changes little, and
    autovacuum re-analyzes the whole table once enough has. See `written_xid_statistics`. -#}
{% macro analyze_table() -%}
    {%- set materialized = config.get('materialized') -%}
    {%- if materialized == 'table'
        or (materialized == 'incremental' and not is_incremental()) -%}
        analyze {{ this }}
    {%- elif materialized == 'incremental' -%}
        {{ written_xid_statistics() }}
    {%- endif -%}
{%- endmacro %}

{#- The statistics of `_written_xid` after an incremental build, from what the build wrote:
    the build's id joins the most common values with its share of the table (its rows counted
    on the `_written_xid` index), the values stored before keep theirs scaled down to make
    room (at most `written_xid_common_values`, 100, the largest kept). Written with
    PostgreSQL 18's `pg_restore_attribute_stats`, no row sampled: an `analyze (_written_xid)`
    of 3,000 rows read ~2,800 random heap pages per model, 32,000 a cycle of 10,000 orders at
    1,000,000 (0.2-0.6 s a model on a quiet disk, 7-23 s on a slow one; bench/README.md).
    Sampled instead (statistics target `written_xid_statistics_target`, 10) on an older
    server, or when the column has no common values yet.
    A build that wrote nothing (a run with nothing new) leaves the statistics as they are. -#}
{% macro written_xid_statistics() -%}
    do $analyze$
    declare
        written float8;
        total float8;
        common_values text;
        common_freqs real[];
        previous text := current_setting('default_statistics_target');
    begin
        select count(*) into written from {{ this }} where _written_xid = {{ written_xid() }};
        if written = 0 then
            return;
        end if;
        if current_setting('server_version_num')::int < 180000
            or not exists (
                select from pg_stats
                where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                    and attname = '_written_xid' and not inherited
                    and most_common_vals is not null
            )
        then
            perform set_config('default_statistics_target',
                               '{{ var("written_xid_statistics_target", 10) }}', true);
            analyze {{ this }} (_written_xid);
            perform set_config('default_statistics_target', previous, true);
            return;
        end if;
        select greatest(reltuples, written) into total
        from pg_class where oid = '{{ this.schema }}.{{ this.identifier }}'::regclass;
        with stored as (
            select common.value::bigint as value, common.freq
            from pg_stats,
                unnest(most_common_vals::text::text[], most_common_freqs) as common (value, freq)
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                and attname = '_written_xid' and not inherited
        ),
        shares as (
            select value, freq * (1 - written / total) as freq
            from stored
            where value <> {{ written_xid() }}
            union all
            select {{ written_xid() }}, written / total
        ),
        kept as (
            select value, freq
            from shares
            order by freq desc, value desc
            limit {{ var("written_xid_common_values", 100) }}
        )
        select array_agg(value order by freq desc, value desc)::text,
            array_agg(freq::real order by freq desc, value desc)
        into common_values, common_freqs
        from kept;
        perform pg_restore_attribute_stats(
            'schemaname', '{{ this.schema }}', 'relname', '{{ this.identifier }}',
            'attname', '_written_xid', 'inherited', false,
            'most_common_vals', common_values, 'most_common_freqs', common_freqs
        );
    end $analyze$
{%- endmacro %}
