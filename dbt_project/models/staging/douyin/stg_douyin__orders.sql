with source as (
    select * from {{ source('raw', 'douyin_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'shop_id'") }} as shop_id,
        {{ nonblank("payload ->> 'doudian_open_id'") }} as buyer_id,

        ---------- receiver
        payload -> '_decrypted' ->> 'phone' as receiver_phone,
        {{ nonblank("payload -> 'post_addr' -> 'province' ->> 'name'") }} as province,
        {{ nonblank("payload -> 'post_addr' -> 'city' ->> 'name'") }} as city,
        {{ nonblank("payload -> 'post_addr' -> 'town' ->> 'name'") }} as district,
        'CN' as country,

        ---------- amounts (fen on the wire)
        {{ fen_text_to_yuan("payload ->> 'order_amount'") }} as goods_value,
        {{ fen_text_to_yuan("payload ->> 'promotion_amount'") }} as discount_amount,
        {{ fen_text_to_yuan("payload ->> 'post_amount'") }} as freight,
        {{ fen_text_to_yuan("payload ->> 'pay_amount'") }} as paid_amount,

        ---------- status
        payload ->> 'order_status' as platform_status,

        ---------- timestamps (unix seconds on the wire)
        {{ unix_ts("payload ->> 'create_time'") }} as created_at,
        {{ unix_ts("payload ->> 'pay_time'") }} as paid_at,
        source_modified_at as modified_at,
        loaded_at
    from source
)

select * from renamed
