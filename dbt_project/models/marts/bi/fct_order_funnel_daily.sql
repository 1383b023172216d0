{# The order funnel per channel and local (Beijing) day: buyers who added to cart, orders
   submitted, paid, shipped and delivered (orders counted on their creation day). #}

with orders as (
    select * from {{ ref('fct_orders') }}
),

cart_adds as (
    select * from {{ ref('int_cart_adds') }}
),

carts as (
    select
        channel,
        {{ local_date('event_at') }} as day,
        count(distinct buyer_id) as cart_buyers,
        count(*) as cart_adds
    from cart_adds
    group by 1, 2
),

order_counts as (
    select
        channel,
        {{ local_date('created_at') }} as day,
        count(*) as orders_submitted,
        count(*) filter (where paid_at is not null) as orders_paid,
        count(*) filter (where is_shipped) as orders_shipped,
        count(*) filter (where unified_status = 'delivered' or delivered_at is not null)
            as orders_delivered,
        coalesce(sum(paid_amount) filter (where paid_at is not null), 0) as paid_amount
    from orders
    group by 1, 2
),

final as (
    select
        coalesce(order_counts.channel, carts.channel) as channel,
        coalesce(order_counts.day, carts.day) as day,
        coalesce(carts.cart_buyers, 0) as cart_buyers,
        coalesce(carts.cart_adds, 0) as cart_adds,
        coalesce(order_counts.orders_submitted, 0) as orders_submitted,
        coalesce(order_counts.orders_paid, 0) as orders_paid,
        coalesce(order_counts.orders_shipped, 0) as orders_shipped,
        coalesce(order_counts.orders_delivered, 0) as orders_delivered,
        coalesce(order_counts.paid_amount, 0) as paid_amount,
        round(order_counts.orders_paid::numeric / nullif(order_counts.orders_submitted, 0), 4)
            as pay_rate,
        round(order_counts.orders_shipped::numeric / nullif(order_counts.orders_paid, 0), 4)
            as ship_rate,
        round(order_counts.orders_delivered::numeric / nullif(order_counts.orders_shipped, 0), 4)
            as delivery_rate
    from order_counts
    full outer join carts
        on carts.channel = order_counts.channel
        and carts.day = order_counts.day
)

select * from final
