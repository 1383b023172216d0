{#- The current unified status of every order (the body of int_order_status). `keys`: the
    name of a relation (a CTE of the caller) with channel, platform_order_no: only those orders.
    fct_orders' incremental build passes its changed keys, applied to every input before the
    joins: filtering the view's output instead made PostgreSQL compute the status of every
    order first (the `ops` part, a union of five tables' latest rows, cannot take the filter;
    10 s of a 10,000-order cycle at 1,000,000 orders). `key_count`: how many keys there are,
    when the caller counted them: while they are few, each keyed input is read by one index
    probe per order (rows_of_changed_orders). As a semi-join the planner, taking the keys'
    union for 20 times what it is, hashed every row of int_orders, the fulfilment statuses and
    the address placements (650 MB read for 10,000 orders at 1,000,000). -#}
{% macro order_status(keys=none, key_count=none) -%}
with platform as (
    {{ order_status_rows(ref('int_orders'), keys, key_count) }}
),

decisions as (
    {%- if keys %}
    {{ order_decisions(keys) }}
    {%- else %}
    select * from {{ ref('stg_ops__order_decisions') }}
    {%- endif %}
),

fulfillment as (
    {{ order_status_rows(ref('int_order_fulfillment_status'), keys, key_count) }}
),

geo as (
    {{ order_status_rows(
        ref('stg_enrichment__address_geo'), keys, key_count, sized_by_raw='address_geo'
    ) }}
),

combined as (
    select
        platform.*,
        decisions.routing_decision,
        decisions.routing_warehouse_id,
        decisions.routing_carrier,
        decisions.routing_rule,
        decisions.routing_score,
        decisions.routing_inputs,
        decisions.routing_decided_at,
        decisions.risk_score,
        decisions.risk_signals,
        decisions.review_score,
        decisions.review_hold_until,
        decisions.review_decision,
        decisions.merge_group_id,
        decisions.merge_reason,
        decisions.lock_lines,
        decisions.locked_qty,
        decisions.lock_states,
        fulfillment.fulfillment_status,
        fulfillment.fulfillment_status_at,
        fulfillment.fulfillment_origin,
        geo.adcode,
        geo.latitude,
        geo.longitude,
        geo.is_address_parsed,
        case
            when decisions.review_decision in ('intercept', 'intercepted', 'reject', 'rejected')
                then 'intercepted'
            when decisions.review_decision in ('release', 'released', 'approve', 'approved', 'pass')
                then 'released'
            when decisions.review_hold_until is not null
                or decisions.risk_score > {{ var('risk_hold_score', 80) }}
                then 'held'
            when decisions.risk_score is not null then 'passed'
        end as risk_state
    from platform
    left join decisions using (channel, platform_order_no)
    left join fulfillment using (channel, platform_order_no)
    left join geo using (channel, platform_order_no)
),

final as (
    select
        *,
        case
            when platform_unified_status <> 'paid_pending_review' then platform_unified_status
            when risk_state = 'intercepted' then 'closed'
            when fulfillment_status is not null then fulfillment_status
            when routing_decision in ('ship', 'split') then 'allocated'
            when risk_state = 'held' then 'risk_review'
            when routing_decision = 'manual_review' then 'pending_allocation'
            when risk_state in ('released', 'passed') then 'pending_allocation'
            else 'paid_pending_review'
        end as unified_status,
        case
            when platform_unified_status <> 'paid_pending_review' then 'platform'
            when risk_state = 'intercepted' then 'review'
            when fulfillment_status is not null then fulfillment_origin
            when routing_decision in ('ship', 'split', 'manual_review') then 'routing'
            when risk_state is not null then 'risk'
            else 'platform'
        end as status_source
    from combined
)

select * from final
{%- endmacro %}

{#- The rows of `relation` of the orders `keys` names (every row without keys).
    `sized_by_raw`: the raw table whose size stands for a view's (looked up only with keys: a
    unit test of the full model declares no such source). -#}
{% macro order_status_rows(relation, keys, key_count, sized_by_raw=none) -%}
    {%- if keys and key_count is not none -%}
    {{ rows_of_changed_orders(
        relation, 'select channel, platform_order_no from ' ~ keys, key_count=key_count,
        sized_by=optional_source('raw', sized_by_raw) if sized_by_raw else none
    ) }}
    {%- else -%}
    select * from {{ relation }}
    {{- order_status_keys(keys) }}
    {%- endif -%}
{%- endmacro %}

{#- `where` the order is one of `keys` (nothing without keys). -#}
{% macro order_status_keys(keys) -%}
    {%- if keys %}
    where (channel, platform_order_no) in (select channel, platform_order_no from {{ keys }})
    {%- endif %}
{%- endmacro %}
