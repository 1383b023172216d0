{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['channel', 'platform_order_no'], 'unique': True}] + build_indexes(),
        pre_hook="{{ sequential_reads_in_full_build() }}",
        post_hook="{{ update_buyer_history() }}",
    )
}}

{# 订单全息档案: one row per order answering every question about it, joining the order, its
   items, payments and coupons, logistics tracks, CS tickets, inventory movements, after-sale,
   buyer history, warehouse, risk assessment, routing decision, merge candidates and status
   history. Decisions are left-joined: empty until the decision assets have run.
   Incremental: orders whose row in any of those facts changed since the last build. A
   buyer's new or changed order also changes the buyer history shown on their other orders:
   those rows get the new history by the post-hook `update_buyer_history`, in place, without
   their items, tracks, movements and statuses read again. #}

with
{% if is_incremental() %}
changed as (
    {%- for fact in ['fct_orders', 'fct_order_items', 'fct_logistics_tracks', 'fct_cs_tickets',
                     'fct_inventory_movements', 'fct_after_sales', 'fct_order_status_history'] %}
    {% if not loop.first %}union{% endif %}
    {{ changed_rows(ref(fact)) }}
        and platform_order_no is not null
    {%- endfor %}
),
{% endif %}

orders as (
    select * from {{ ref('fct_orders') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
),

items as (
    select
        channel,
        platform_order_no,
        count(*) as item_lines,
        sum(qty) as item_qty,
        array_agg(sku order by line_no) as skus,
        jsonb_agg(
            jsonb_build_object(
                'line_no', line_no, 'sku', sku, 'title', title, 'qty', qty,
                'unit_price', unit_price, 'line_discount', line_discount,
                'line_paid_amount', line_paid_amount
            )
            order by line_no
        ) as items_json
    from {{ ref('fct_order_items') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
    group by 1, 2
),

tracks as (
    select distinct on (channel, platform_order_no)
        channel,
        platform_order_no,
        tracking_no as track_tracking_no,
        carrier as track_carrier,
        event_type as last_track_event,
        description as last_track_description,
        event_at as last_track_at,
        shipped_at as track_shipped_at,
        promised_at as promised_delivery_at,
        count(*) over (partition by channel, platform_order_no) as track_events,
        bool_or(event_type = 'pickup_failed') over (partition by channel, platform_order_no)
            as had_pickup_failure,
        min(event_at) filter (where event_type = 'delivered')
            over (partition by channel, platform_order_no) as carrier_delivered_at
    from {{ ref('fct_logistics_tracks') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
    order by channel, platform_order_no, event_at desc
),

tickets as (
    select distinct on (channel, platform_order_no)
        channel,
        platform_order_no,
        count(*) over (partition by channel, platform_order_no) as cs_tickets,
        count(*) filter (where is_open) over (partition by channel, platform_order_no)
            as cs_open_tickets,
        topic as cs_last_topic,
        opened_at as cs_last_opened_at
    from {{ ref('fct_cs_tickets') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
    order by channel, platform_order_no, opened_at desc
),

movements as (
    select
        channel,
        platform_order_no,
        count(*) as inventory_movements,
        coalesce(sum(locked_change), 0) as stock_locked_change,
        coalesce(sum(on_hand_change), 0) as stock_on_hand_change,
        min(warehouse_id) as movement_warehouse_id
    from {{ ref('fct_inventory_movements') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
    group by 1, 2
),

after_sales as (
    select
        channel,
        platform_order_no,
        after_sale_cost,
        after_sale_at
    from {{ ref('fct_after_sales') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
),

status_now as (
    select
        channel,
        platform_order_no,
        entered_at as status_entered_at,
        hours_in_status
    from {{ ref('fct_order_status_history') }}
    where is_current
    {% if is_incremental() %}
        and (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
),

violations as (
    select channel, platform_order_no, count(*) as status_violations
    from {{ ref('fct_order_status_violations') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
    group by 1, 2
),

buyers as (
    select * from {{ ref('dim_buyers') }}
),

warehouses as (
    select * from {{ ref('dim_warehouses') }}
),

final as (
    select
        ---------- order
        orders.channel,
        orders.platform_order_no,
        orders.shop_id,
        orders.source,
        orders.unified_status,
        orders.status_source,
        orders.platform_status,
        orders.created_at,
        orders.paid_at,
        orders.shipped_at,
        orders.delivered_at,
        orders.closed_at,
        orders.modified_at,

        ---------- receiver (masked)
        orders.receiver_name,
        orders.receiver_phone,
        orders.receiver_address,
        orders.province,
        orders.city,
        orders.district,
        orders.country,
        orders.adcode,
        orders.latitude,
        orders.longitude,
        orders.is_address_parsed,
        orders.is_cross_border,
        orders.hs_code,
        orders.declared_value,
        orders.buyer_note,
        orders.seller_note,

        ---------- items
        coalesce(items.item_lines, 0) as item_lines,
        coalesce(items.item_qty, 0) as item_qty,
        items.skus,
        items.items_json,

        ---------- payments and coupons (numeric yuan)
        orders.goods_value,
        orders.platform_discount,
        orders.shop_discount,
        orders.discount_amount,
        orders.freight,
        orders.paid_amount,
        orders.currency,
        round(orders.discount_amount / nullif(orders.goods_value, 0), 4) as discount_rate,

        ---------- logistics
        coalesce(tracks.track_carrier, orders.carrier) as carrier,
        coalesce(tracks.track_tracking_no, orders.tracking_no) as tracking_no,
        coalesce(tracks.track_events, 0) as track_events,
        tracks.last_track_event,
        tracks.last_track_description,
        tracks.last_track_at,
        tracks.promised_delivery_at,
        coalesce(tracks.carrier_delivered_at, orders.delivered_at) as actual_delivery_at,
        coalesce(
            coalesce(tracks.carrier_delivered_at, orders.delivered_at, now())
                > tracks.promised_delivery_at,
            false
        ) as is_delivery_late,
        coalesce(tracks.had_pickup_failure, false) as had_pickup_failure,

        ---------- CS tickets
        coalesce(tickets.cs_tickets, 0) as cs_tickets,
        coalesce(tickets.cs_open_tickets, 0) as cs_open_tickets,
        tickets.cs_last_topic,
        tickets.cs_last_opened_at,

        ---------- inventory movements
        coalesce(movements.inventory_movements, 0) as inventory_movements,
        coalesce(movements.stock_locked_change, 0) as stock_locked_change,
        coalesce(movements.stock_on_hand_change, 0) as stock_on_hand_change,

        ---------- after-sale
        orders.after_sale_kind,
        coalesce(after_sales.after_sale_cost, 0) as after_sale_cost,
        after_sales.after_sale_at,

        ---------- buyer history
        orders.buyer_id,
        buyers.buyer_key,
        buyers.orders as buyer_orders,
        buyers.refund_orders as buyer_refund_orders,
        buyers.paid_amount as buyer_paid_amount,
        buyers.first_seen_at as buyer_first_seen_at,
        orders.created_at = buyers.first_seen_at as is_first_order,

        ---------- warehouse
        warehouses.warehouse_id,
        {{ spreadsheet_safe('warehouses.name') }} as warehouse_name,
        warehouses.is_front as is_front_warehouse,

        ---------- risk assessment and review
        orders.risk_score,
        orders.risk_signals,
        orders.risk_state,
        orders.review_decision,
        orders.review_hold_until,

        ---------- routing decision
        orders.routing_decision,
        orders.routing_rule,
        orders.routing_score,
        orders.routing_carrier,
        orders.routing_inputs,
        orders.routing_decided_at,

        ---------- merge candidates
        orders.merge_group_id,

        ---------- status history
        status_now.status_entered_at,
        status_now.hours_in_status,
        coalesce(violations.status_violations, 0) as status_violations,

        ---------- build bookkeeping
        {{ build_columns() }}
    from orders
    left join items using (channel, platform_order_no)
    left join tracks using (channel, platform_order_no)
    left join tickets using (channel, platform_order_no)
    left join movements using (channel, platform_order_no)
    left join after_sales using (channel, platform_order_no)
    left join status_now using (channel, platform_order_no)
    left join violations using (channel, platform_order_no)
    left join buyers
        on buyers.channel = orders.channel
        and buyers.buyer_id = orders.buyer_id
    left join warehouses
        on warehouses.warehouse_id = coalesce(
            orders.routing_warehouse_id, movements.movement_warehouse_id
        )
)

select * from final
