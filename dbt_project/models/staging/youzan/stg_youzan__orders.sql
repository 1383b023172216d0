with source as (
    select * from {{ source('raw', 'youzan_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'kdt_id'") }} as shop_id,
        {{ nonblank("payload -> 'buyer_info' ->> 'yz_open_id'") }} as buyer_id,

        ---------- receiver
        payload -> '_decrypted' ->> 'phone' as receiver_phone,
        {{ nonblank("payload -> 'address_info' ->> 'delivery_province'") }} as province,
        {{ nonblank("payload -> 'address_info' ->> 'delivery_city'") }} as city,
        {{ nonblank("payload -> 'address_info' ->> 'delivery_district'") }} as district,
        'CN' as country,

        ---------- amounts (yuan on the wire)
        {{ to_yuan("payload -> 'pay_info' ->> 'total_fee'") }} as goods_value,
        {{ to_yuan("payload -> 'pay_info' ->> 'discount_fee'") }} as discount_amount,
        {{ to_yuan("payload -> 'pay_info' ->> 'post_fee'") }} as freight,
        {{ to_yuan("payload -> 'pay_info' ->> 'payment'") }} as paid_amount,

        ---------- status
        payload -> 'order_info' ->> 'status' as platform_status,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("payload -> 'order_info' ->> 'created'") }} as created_at,
        {{ beijing_ts("payload -> 'order_info' ->> 'pay_time'") }} as paid_at,
        source_modified_at as modified_at,
        loaded_at
    from source
)

select * from renamed
