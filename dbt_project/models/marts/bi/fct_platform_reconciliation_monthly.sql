{# Monthly reconciliation per platform (local month of payment): orders, goods value,
   platform and shop coupons, freight, paid amount and refunds, with paid = goods - coupons
   + freight checked per row. #}

with orders as (
    select * from {{ ref('fct_orders') }}
    where paid_at is not null
),

after_sales as (
    select * from {{ ref('fct_after_sales') }}
),

monthly as (
    select
        orders.channel,
        {{ local_month('orders.paid_at') }} as month,
        count(*) as orders,
        sum(orders.goods_value) as goods_value,
        sum(orders.platform_discount) as platform_coupons,
        sum(orders.shop_discount) as shop_coupons,
        sum(orders.discount_amount) as discount_amount,
        sum(orders.freight) as freight,
        sum(orders.paid_amount) as paid_amount,
        coalesce(sum(after_sales.refund_amount), 0) as refund_amount,
        count(after_sales.platform_order_no) as refunded_orders
    from orders
    left join after_sales using (channel, platform_order_no)
    group by 1, 2
),

final as (
    select
        *,
        paid_amount - refund_amount as net_amount,
        goods_value - discount_amount + freight - paid_amount as reconciliation_gap
    from monthly
)

select * from final
