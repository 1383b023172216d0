with orders as (
    select * from {{ ref('int_orders_unioned') }}
),

final as (
    select
        channel,
        platform_order_no,
        shop_id,
        case
            when paid_at is null then 'awaiting_payment'
            else 'paid_pending_review'
        end as unified_status,
        goods_value,
        discount_amount,
        freight,
        paid_amount,
        created_at,
        paid_at,
        {{ mask_phone('receiver_phone') }} as receiver_phone,
        province,
        city,
        district,
        country
    from orders
)

select * from final
