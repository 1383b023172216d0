{# One row per buyer of a channel (buyer ids are platform-scoped): order and refund history. #}

with orders as (
    select * from {{ ref('fct_orders') }}
    where buyer_id is not null
),

final as (
    select
        ---------- ids
        channel,
        buyer_id,
        {{ opaque_key("channel || ':' || buyer_id") }} as buyer_key,

        ---------- history
        count(*) as orders,
        count(*) filter (where paid_at is not null) as paid_orders,
        count(*) filter (where after_sale_kind in ('refund', 'return', 'reject')) as refund_orders,
        count(*) filter (where after_sale_kind = 'cancel') as cancelled_orders,
        coalesce(sum(paid_amount) filter (where paid_at is not null), 0) as paid_amount,
        coalesce(sum(discount_amount) filter (where paid_at is not null), 0) as discount_amount,
        count(distinct receiver_key) as distinct_receivers,
        count(distinct province) as distinct_provinces,
        mode() within group (order by province) as main_province,

        ---------- timestamps
        min(created_at) as first_seen_at,
        max(created_at) as last_order_at
    from orders
    group by channel, buyer_id
)

select * from final
