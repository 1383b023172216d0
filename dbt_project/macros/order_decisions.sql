{#- The latest decisions about each order (the body of stg_ops__order_decisions). `keys`: the
    name of a relation (a CTE of the caller) with channel, platform_order_no: only those orders,
    filtered in each ops table before the latest rows are picked and the locks summed.
    fct_orders' incremental build passes its changed keys: filtering the view's output instead
    summed the locks of every order and merge-joined them again and again from a temporary
    file (500 MB of temporary reads for 10,000 changed orders at 1,000,000). -#}
{% macro order_decisions(keys=none) -%}
with
{#- each ops table with the transaction of each row (the newest says when a decision changed) #}
{%- for name, table in [('routing', 'routing_decisions'), ('risk', 'risk_assessments'),
                        ('review', 'review_queue'), ('merges', 'merge_candidates'),
                        ('locks', 'inventory_locks')] %}
{{ name }} as (
    select *, xmin::text::bigint as row_xid from {{ source('ops', table) }}
    {{- order_status_keys(keys) }}
),
{% endfor %}
latest_routing as (
    select distinct on (channel, platform_order_no)
        channel,
        platform_order_no,
        decision as routing_decision,
        warehouse_id as routing_warehouse_id,
        carrier as routing_carrier,
        rule as routing_rule,
        score::numeric as routing_score,
        inputs as routing_inputs,
        decided_at as routing_decided_at,
        row_xid
    from routing
    order by channel, platform_order_no, decided_at desc nulls last
),

top_risk as (
    select distinct on (channel, platform_order_no)
        channel,
        platform_order_no,
        score::numeric as risk_score,
        signals as risk_signals,
        row_xid
    from risk
    order by channel, platform_order_no, score desc nulls last
),

latest_review as (
    select distinct on (channel, platform_order_no)
        channel,
        platform_order_no,
        score::numeric as review_score,
        hold_until as review_hold_until,
        nullif(lower(trim(decision)), '') as review_decision,
        row_xid
    from review
    order by channel, platform_order_no, hold_until desc nulls last
),

merge_groups as (
    select distinct on (channel, platform_order_no)
        channel,
        platform_order_no,
        group_id::text as merge_group_id,
        reason as merge_reason,
        row_xid
    from merges
    order by channel, platform_order_no, group_id
),

lock_totals as (
    select
        channel,
        platform_order_no,
        count(*) as lock_lines,
        sum(qty) as locked_qty,
        string_agg(distinct state, ',' order by state) as lock_states,
        max(row_xid) as row_xid
    from locks
    group by channel, platform_order_no
),

order_keys as (
    select channel, platform_order_no from latest_routing
    union
    select channel, platform_order_no from top_risk
    union
    select channel, platform_order_no from latest_review
    union
    select channel, platform_order_no from merge_groups
    union
    select channel, platform_order_no from lock_totals
),

joined as (
    select
        ---------- ids
        order_keys.channel,
        order_keys.platform_order_no,

        ---------- routing
        latest_routing.routing_decision,
        latest_routing.routing_warehouse_id,
        latest_routing.routing_carrier,
        latest_routing.routing_rule,
        latest_routing.routing_score,
        latest_routing.routing_inputs,
        latest_routing.routing_decided_at,

        ---------- risk and review
        top_risk.risk_score,
        top_risk.risk_signals,
        latest_review.review_score,
        latest_review.review_hold_until,
        latest_review.review_decision,

        ---------- merges and stock locks
        merge_groups.merge_group_id,
        merge_groups.merge_reason,
        lock_totals.lock_lines,
        lock_totals.locked_qty,
        lock_totals.lock_states,

        ---------- the newest transaction that touched any of these rows
        greatest(
            latest_routing.row_xid, top_risk.row_xid, latest_review.row_xid,
            merge_groups.row_xid, lock_totals.row_xid
        ) as decisions_xid
    from order_keys
    left join latest_routing using (channel, platform_order_no)
    left join top_risk using (channel, platform_order_no)
    left join latest_review using (channel, platform_order_no)
    left join merge_groups using (channel, platform_order_no)
    left join lock_totals using (channel, platform_order_no)
)

select * from joined
{%- endmacro %}
