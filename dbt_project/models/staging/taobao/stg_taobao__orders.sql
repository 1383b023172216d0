with source as (
    select * from {{ source('raw', 'taobao_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'seller_nick'") }} as shop_id,
        {{ nonblank("coalesce(payload ->> 'buyer_open_uid', payload ->> 'buyer_nick')") }} as buyer_id,

        ---------- receiver (clear values from the decrypt step)
        payload -> '_decrypted' ->> 'phone' as receiver_phone,
        {{ nonblank("payload ->> 'receiver_state'") }} as province,
        {{ nonblank("payload ->> 'receiver_city'") }} as city,
        {{ nonblank("payload ->> 'receiver_district'") }} as district,
        'CN' as country,

        ---------- amounts (yuan strings on the wire)
        {{ to_yuan("payload ->> 'total_fee'") }} as goods_value,
        {{ to_yuan("payload ->> 'discount_fee'") }} as discount_amount,
        {{ to_yuan("payload ->> 'post_fee'") }} as freight,
        {{ to_yuan("payload ->> 'payment'") }} as paid_amount,

        ---------- status
        payload ->> 'status' as platform_status,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("payload ->> 'created'") }} as created_at,
        {{ beijing_ts("payload ->> 'pay_time'") }} as paid_at,
        source_modified_at as modified_at,
        loaded_at
    from source
)

select * from renamed
