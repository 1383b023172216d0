{# Delivery timeouts per receiver province and local day of the promised delivery: orders due
   that day and the share delivered after the promise (or not yet delivered). #}

with holographic as (
    select * from {{ ref('order_holographic') }}
    where promised_delivery_at is not null
),

final as (
    select
        coalesce(province, '未知') as province,
        {{ local_date('promised_delivery_at') }} as day,
        count(*) as orders_due,
        count(*) filter (where is_delivery_late) as orders_late,
        round(count(*) filter (where is_delivery_late)::numeric / nullif(count(*), 0), 4)
            as timeout_rate
    from holographic
    group by 1, 2
)

select * from final
