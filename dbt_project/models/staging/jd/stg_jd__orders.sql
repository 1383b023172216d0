with source as (
    select * from {{ source('raw', 'jd_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'venderId'") }} as shop_id,
        {{ nonblank("coalesce(payload ->> 'open_id_buyer', payload ->> 'pin')") }} as buyer_id,

        ---------- receiver
        payload -> '_decrypted' ->> 'phone' as receiver_phone,
        {{ nonblank("payload -> 'consigneeInfo' ->> 'province'") }} as province,
        {{ nonblank("payload -> 'consigneeInfo' ->> 'city'") }} as city,
        {{ nonblank("payload -> 'consigneeInfo' ->> 'county'") }} as district,
        'CN' as country,

        ---------- amounts (yuan strings on the wire)
        {{ to_yuan("payload ->> 'orderTotalPrice'") }} as goods_value,
        {{ to_yuan("payload ->> 'sellerDiscount'") }} as discount_amount,
        {{ to_yuan("payload ->> 'freightPrice'") }} as freight,
        {{ to_yuan("payload ->> 'orderPayment'") }} as paid_amount,

        ---------- status
        payload ->> 'orderState' as platform_status,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("payload ->> 'orderStartTime'") }} as created_at,
        {{ beijing_ts("payload ->> 'paymentConfirmTime'") }} as paid_at,
        source_modified_at as modified_at,
        loaded_at
    from source
)

select * from renamed
