{#- The current unified status of every order (the body of int_order_status). `keys`: the
    name of a relation (a CTE of the caller) with channel, platform_order_no: only those orders.
    fct_orders' incremental build passes its changed keys, applied to every input before the
    joins: filtering the view's output instead made PostgreSQL compute the status of every
    order first (the `ops` part, a union of five tables' latest rows, cannot take the filter;
    10 s of a 10,000-order cycle at 1,000,000 orders). -#}
{% macro order_status(keys=none) -%}
with platform as (
    select * from {{ ref('int_orders') }}
    {{- order_status_keys(keys) }}
),

decisions as (
    {%- if keys %}
    {{ order_decisions(keys) }}
    {%- else %}
    select * from {{ ref('stg_ops__order_decisions') }}
    {%- endif %}
),

fulfillment as (
    select * from {{ ref('int_order_fulfillment_status') }}
    {{- order_status_keys(keys) }}
),

geo as (
    select * from {{ ref('stg_enrichment__address_geo') }}
    {{- order_status_keys(keys) }}
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

{#- `where` the order is one of `keys` (nothing without keys). -#}
{% macro order_status_keys(keys) -%}
    {%- if keys %}
    where (channel, platform_order_no) in (select channel, platform_order_no from {{ keys }})
    {%- endif %}
{%- endmacro %}
