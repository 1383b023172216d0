{# Per SKU and channel, the average unit price it sold at, and how far that is above the
   cheapest channel's (the cross-platform price difference an alert watches at 0.8 %). #}

with items as (
    select * from {{ ref('fct_order_items') }}
    where sku is not null and qty > 0
),

per_channel as (
    select
        sku,
        channel,
        count(*) as lines,
        sum(qty) as units,
        round(sum(line_goods_value) / nullif(sum(qty), 0), 2) as avg_unit_price,
        min(unit_price) as min_unit_price,
        max(unit_price) as max_unit_price
    from items
    group by 1, 2
),

final as (
    select
        sku,
        channel,
        lines,
        units,
        avg_unit_price,
        min_unit_price,
        max_unit_price,
        min(avg_unit_price) over (partition by sku) as cheapest_channel_price,
        count(*) over (partition by sku) as channels_selling,
        round(
            (avg_unit_price - min(avg_unit_price) over (partition by sku))
            / nullif(min(avg_unit_price) over (partition by sku), 0),
            4
        ) as price_diff_rate,
        coalesce(
            (avg_unit_price - min(avg_unit_price) over (partition by sku))
            / nullif(min(avg_unit_price) over (partition by sku), 0)
            > {{ var('price_diff_alert_rate', 0.008) }},
            false
        ) as is_above_threshold
    from per_channel
)

select * from final
