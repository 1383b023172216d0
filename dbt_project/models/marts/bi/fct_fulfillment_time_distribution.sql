{# How long fulfillment takes, per channel and stage, as a distribution: hours from payment to
   shipping and from shipping to delivery, bucketed, with the percentiles of each stage. #}

with orders as (
    select * from {{ ref('fct_orders') }}
),

durations as (
    select
        channel,
        'paid_to_shipped' as stage,
        extract(epoch from (shipped_at - paid_at)) / 3600.0 as hours
    from orders
    where shipped_at is not null and paid_at is not null
    union all
    select
        channel,
        'shipped_to_delivered',
        extract(epoch from (delivered_at - shipped_at)) / 3600.0
    from orders
    where delivered_at is not null and shipped_at is not null
),

bucketed as (
    select
        channel,
        stage,
        hours,
        case
            when hours < 6 then '0-6h'
            when hours < 12 then '6-12h'
            when hours < 24 then '12-24h'
            when hours < 48 then '24-48h'
            when hours < 72 then '48-72h'
            else '72h+'
        end as hours_bucket,
        case
            when hours < 6 then 1
            when hours < 12 then 2
            when hours < 24 then 3
            when hours < 48 then 4
            when hours < 72 then 5
            else 6
        end as bucket_order
    from durations
    where hours >= 0
),

final as (
    select
        channel,
        stage,
        hours_bucket,
        bucket_order,
        count(*) as orders,
        round(count(*)::numeric / sum(count(*)) over (partition by channel, stage), 4)
            as share_of_stage,
        round(avg(hours)::numeric, 2) as avg_hours_in_bucket
    from bucketed
    group by channel, stage, hours_bucket, bucket_order
)

select * from final
