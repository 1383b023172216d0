{#- What the platforms alone say about each order: its platform status words mapped to
    events through the platform_status_map seed, folded into the unified status exactly as
    sandbox/model.py Order.status_at does (cancel > refund > return/reject > deliver > ship
    > paid > unpaid). OrderPulse's own decisions refine `paid_pending_review` later. -#}

with orders as (
    select * from {{ ref('int_orders_unioned') }}
),

status_map as (
    select * from {{ ref('platform_status_map') }}
),

mapped as (
    select
        orders.*,
        coalesce(own_status.platform_event, any_status.platform_event) as status_event,
        coalesce(own_refund.platform_event, any_refund.platform_event) as refund_event
    from orders
    left join status_map as own_status
        on own_status.channel = orders.channel
        and own_status.status_field = 'status'
        and own_status.platform_value = orders.platform_status
    left join status_map as any_status
        on any_status.channel = '*'
        and any_status.status_field = 'status'
        and any_status.platform_value = lower(orders.platform_status)
    left join status_map as own_refund
        on own_refund.channel = orders.channel
        and own_refund.status_field = 'refund'
        and own_refund.platform_value = orders.refund_status
    left join status_map as any_refund
        on any_refund.channel = '*'
        and any_refund.status_field = 'refund'
        and any_refund.platform_value = lower(orders.refund_status)
),

flags as (
    select
        *,
        (status_event is not null or platform_status is null) as is_status_mapped,
        -- a platform's "closed" is a cancel before payment and a refund after it
        coalesce(
            paid_at is not null or status_event in ('pay', 'ship', 'deliver', 'close', 'refund'),
            false
        ) as is_paid,
        coalesce(
            status_event = 'cancel'
            or refund_event = 'cancel'
            or (status_event = 'close' and paid_at is null),
            false
        ) as has_cancel,
        coalesce(
            status_event = 'refund'
            or refund_event = 'refund'
            or (status_event = 'close' and paid_at is not null),
            false
        ) as has_refund,
        coalesce('return' in (status_event, refund_event), false) as has_return,
        coalesce('reject' in (status_event, refund_event), false) as has_reject,
        coalesce(status_event = 'deliver' or delivered_at is not null, false) as has_deliver,
        coalesce(
            status_event in ('ship', 'deliver')
            or shipped_at is not null
            or delivered_at is not null,
            false
        ) as has_ship
    from mapped
),

folded as (
    select
        *,
        case
            when has_cancel then 'closed'
            when has_refund and has_ship then 'after_sale'
            when has_refund then 'closed'
            when has_return or has_reject then 'after_sale'
            when has_deliver then 'delivered'
            when has_ship then 'in_transit'
            when is_paid then 'paid_pending_review'
            else 'awaiting_payment'
        end as platform_unified_status
    from flags
)

select * from folded
