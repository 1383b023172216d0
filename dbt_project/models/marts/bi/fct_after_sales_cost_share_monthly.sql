{# After-sales cost as a share of sales, per channel and local month: refunds plus freight
   lost on shipped returns, against the paid amount of the month's orders. #}

with orders as (
    select * from {{ ref('fct_orders') }}
    where paid_at is not null
),

after_sales as (
    select * from {{ ref('fct_after_sales') }}
),

sales as (
    select
        channel,
        {{ local_month('paid_at') }} as month,
        count(*) as paid_orders,
        sum(paid_amount) as paid_amount
    from orders
    group by 1, 2
),

costs as (
    select
        channel,
        {{ local_month('paid_at') }} as month,
        count(*) as after_sale_orders,
        sum(refund_amount) as refund_amount,
        sum(freight_lost) as freight_lost,
        sum(after_sale_cost) as after_sale_cost
    from after_sales
    group by 1, 2
),

final as (
    select
        sales.channel,
        sales.month,
        sales.paid_orders,
        sales.paid_amount,
        coalesce(costs.after_sale_orders, 0) as after_sale_orders,
        coalesce(costs.refund_amount, 0) as refund_amount,
        coalesce(costs.freight_lost, 0) as freight_lost,
        coalesce(costs.after_sale_cost, 0) as after_sale_cost,
        round(coalesce(costs.after_sale_cost, 0) / nullif(sales.paid_amount, 0), 4)
            as after_sale_cost_share
    from sales
    left join costs using (channel, month)
)

select * from final
