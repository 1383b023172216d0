{#- The orders routing decides on: paid, not closed or refunded by the platform, and not yet
    taken up by the warehouse (no WMS or carrier event beyond a failed allocation). Made for
    fulfillment/routing_store.py, upstream of every `ops` table: reading it never closes a
    loop. One row per order; `_written_xid` is int_orders' (the GX check of a run reads the
    rows of the orders int_orders' latest build wrote). -#}

with orders as (
    select * from {{ ref('int_orders') }}
),

fulfillment as (
    select * from {{ ref('int_order_fulfillment_status') }}
),

awaiting as (
    select
        orders.channel,
        orders.platform_order_no,
        orders.province,
        orders.city,
        orders.district,
        orders.country,
        orders.goods_value,
        orders.freight,
        orders.paid_at,
        orders.modified_at,
        orders.content_hash,
        orders._written_xid
    from orders
    left join fulfillment
        on orders.channel = fulfillment.channel
        and orders.platform_order_no = fulfillment.platform_order_no
    where orders.platform_unified_status = 'paid_pending_review'
        and orders.paid_at is not null
        and (fulfillment.fulfillment_status is null
            or fulfillment.fulfillment_status = 'pending_allocation')
)

select * from awaiting
