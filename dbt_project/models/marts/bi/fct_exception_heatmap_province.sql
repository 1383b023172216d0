{# Exceptions by receiver province (the heat map): after-sales, pickup failures, late
   deliveries, status-machine violations, orders held by risk, and the share of orders hit. #}

with holographic as (
    select * from {{ ref('order_holographic') }}
),

final as (
    select
        coalesce(province, '未知') as province,
        count(*) as orders,
        count(*) filter (where unified_status = 'after_sale') as after_sale_orders,
        count(*) filter (where had_pickup_failure) as pickup_failures,
        count(*) filter (where is_delivery_late) as late_deliveries,
        count(*) filter (where status_violations > 0) as status_violation_orders,
        count(*) filter (where unified_status = 'risk_review') as risk_held_orders,
        count(*) filter (where cs_tickets > 0) as orders_with_tickets,
        count(*) filter (
            where unified_status = 'after_sale' or had_pickup_failure or is_delivery_late
                or status_violations > 0 or unified_status = 'risk_review'
        ) as exception_orders,
        round(
            count(*) filter (
                where unified_status = 'after_sale' or had_pickup_failure or is_delivery_late
                    or status_violations > 0 or unified_status = 'risk_review'
            )::numeric / nullif(count(*), 0),
            4
        ) as exception_rate
    from holographic
    group by 1
)

select * from final
