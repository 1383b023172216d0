{#- Change detection for incremental models by transaction id instead of a load timestamp:
    a loader transaction that started before the last build but committed after it has an older
    `loaded_at` yet a transaction id at or above that build's snapshot xmin, so nothing is
    missed and no lookback window is needed.

    Every incremental model stores `_built_xid` = the oldest transaction still running when it
    was built; a source row changed since then has xmin >= that id (compared within the 32-bit
    xid space; after a wraparound, run once with --full-refresh). -#}

{% macro built_xid() -%}
    pg_snapshot_xmin(pg_current_snapshot())::text::bigint
{%- endmacro %}

{% macro last_built_xid() -%}
    (select coalesce(max(_built_xid), 0) % 4294967296 from {{ this }})
{%- endmacro %}

{#- The keys of orders about which any decision changed since this model was last built
    (models using it declare `-- depends_on:` the ops sources, see ops_depends_on). -#}
{% macro changed_decision_keys() -%}
    {%- for table in ops_tables() %}
    {% if not loop.first %}union{% endif %}
    select channel, platform_order_no
    from {{ source('ops', table) }}
    where xmin::text::bigint >= {{ last_built_xid() }}
    {%- endfor %}
{%- endmacro %}

{% macro ops_tables() -%}
    {{ return(['routing_decisions', 'risk_assessments', 'review_queue',
               'merge_candidates', 'inventory_locks']) }}
{%- endmacro %}
