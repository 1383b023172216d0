{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['channel', 'platform_order_no']}] + build_indexes(),
        post_hook="{{ delete_orders_without_rows([ref('fct_orders'), ref('fct_cs_tickets')]) }}",
    )
}}

{# One row per paid order that came back: refunded or cancelled after payment (before
   shipping), refunded, returned or rejected after shipping. The refund is the paid amount
   (the platforms refund whole orders here); `cost` adds the freight spent when it shipped. #}

with orders as (
    select * from {{ ref('fct_orders') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (
        {{ changed_rows(ref('fct_orders')) }}
        union
        {{ changed_rows(ref('fct_cs_tickets')) }}
    )
    {% endif %}
),

tickets as (
    select channel, platform_order_no, count(*) as cs_tickets
    from {{ ref('fct_cs_tickets') }}
    where (channel, platform_order_no) in (select channel, platform_order_no from orders)
    group by 1, 2
),

final as (
    select
        ---------- ids
        orders.channel,
        orders.platform_order_no,
        orders.shop_id,
        orders.buyer_id,

        ---------- after-sale
        orders.after_sale_kind,
        orders.unified_status,
        orders.is_shipped as was_shipped,
        orders.province,

        ---------- amounts (numeric yuan)
        orders.goods_value,
        orders.paid_amount as refund_amount,
        case when orders.is_shipped then orders.freight else 0 end
            as freight_lost,
        orders.paid_amount
            + case when orders.is_shipped then orders.freight else 0 end
            as after_sale_cost,
        coalesce(tickets.cs_tickets, 0) as cs_tickets,

        ---------- timestamps
        orders.paid_at,
        orders.shipped_at,
        coalesce(orders.closed_at, orders.modified_at) as after_sale_at,

        ---------- build bookkeeping
        {{ build_columns() }}
    from orders
    left join tickets using (channel, platform_order_no)
    where orders.paid_at is not null
        and orders.after_sale_kind is not null
)

select * from final
