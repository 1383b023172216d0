with source as (
    select * from {{ source('raw', 'kuaishou_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload -> 'orderBaseInfo' ->> 'sellerOpenId'") }} as shop_id,
        {{ nonblank("payload -> 'orderBaseInfo' ->> 'buyerOpenId'") }} as buyer_id,

        ---------- receiver
        payload -> '_decrypted' ->> 'phone' as receiver_phone,
        {{ nonblank("payload -> 'orderAddress' ->> 'province'") }} as province,
        {{ nonblank("payload -> 'orderAddress' ->> 'city'") }} as city,
        {{ nonblank("payload -> 'orderAddress' ->> 'district'") }} as district,
        'CN' as country,

        ---------- amounts (fen on the wire)
        {{ fen_text_to_yuan("payload -> 'orderBaseInfo' ->> 'totalFee'") }} as goods_value,
        {{ fen_text_to_yuan("payload -> 'orderBaseInfo' ->> 'discountFee'") }} as discount_amount,
        {{ fen_text_to_yuan("payload -> 'orderBaseInfo' ->> 'expressFee'") }} as freight,
        {{ fen_text_to_yuan("payload -> 'orderBaseInfo' ->> 'payAmount'") }} as paid_amount,

        ---------- status
        payload -> 'orderBaseInfo' ->> 'status' as platform_status,

        ---------- timestamps (unix milliseconds on the wire)
        {{ unix_ms_ts("payload -> 'orderBaseInfo' ->> 'createTime'") }} as created_at,
        {{ unix_ms_ts("payload -> 'orderBaseInfo' ->> 'payTime'") }} as paid_at,
        source_modified_at as modified_at,
        loaded_at
    from source
)

select * from renamed
