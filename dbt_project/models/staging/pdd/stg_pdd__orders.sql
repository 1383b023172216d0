with source as (
    select * from {{ source('raw', 'pdd_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'mall_id'") }} as shop_id,
        {{ nonblank("payload ->> 'buyer_id'") }} as buyer_id,

        ---------- receiver
        payload -> '_decrypted' ->> 'phone' as receiver_phone,
        {{ nonblank("payload ->> 'province'") }} as province,
        {{ nonblank("payload ->> 'city'") }} as city,
        {{ nonblank("payload ->> 'town'") }} as district,
        'CN' as country,

        ---------- amounts (yuan decimals on the wire)
        {{ to_yuan("payload ->> 'goods_amount'") }} as goods_value,
        {{ to_yuan("payload ->> 'discount_amount'") }} as discount_amount,
        {{ to_yuan("payload ->> 'postage'") }} as freight,
        {{ to_yuan("payload ->> 'pay_amount'") }} as paid_amount,

        ---------- status
        payload ->> 'order_status' as platform_status,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("payload ->> 'created_time'") }} as created_at,
        {{ beijing_ts("payload ->> 'pay_time'") }} as paid_at,
        source_modified_at as modified_at,
        loaded_at
    from source
)

select * from renamed
