with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'taobao_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("coalesce(payload ->> 'shop_id', payload ->> 'seller_nick')") }} as shop_id,
        {{ nonblank("coalesce(payload ->> 'buyer_open_uid', payload ->> 'buyer_nick')") }} as buyer_id,
        {{ nonblank("payload ->> 'buyer_nick'") }} as buyer_nick,
        {{ nonblank("payload ->> 'buyer_ip'") }} as buyer_ip,

        ---------- receiver: clear values come from the connector's decrypt step
        {{ nonblank("payload -> '_decrypted' ->> 'name'") }} as receiver_name,
        {{ nonblank("payload -> '_decrypted' ->> 'phone'") }} as receiver_phone,
        {{ nonblank("payload -> '_decrypted' ->> 'address'") }} as receiver_address,
        {{ nonblank("payload ->> 'receiver_state'") }} as province,
        {{ nonblank("payload ->> 'receiver_city'") }} as city,
        {{ nonblank("payload ->> 'receiver_district'") }} as district,
        coalesce({{ nonblank("payload ->> 'receiver_country'") }}, 'CN') as country,

        ---------- amounts: yuan strings, except coupon_fee in fen; discount_fee holds the
        ---------- shop's coupons and coupon_fee the platform's (天猫购物券)
        {{ to_yuan("payload ->> 'total_fee'") }} as goods_value,
        coalesce({{ fen_text_to_yuan("payload ->> 'coupon_fee'") }}, 0) as platform_discount,
        coalesce({{ to_yuan("payload ->> 'discount_fee'") }}, 0) as shop_discount,
        coalesce({{ fen_text_to_yuan("payload ->> 'coupon_fee'") }}, 0)
            + coalesce({{ to_yuan("payload ->> 'discount_fee'") }}, 0) as discount_amount,
        coalesce({{ to_yuan("payload ->> 'post_fee'") }}, 0) as freight,
        {{ to_yuan("payload ->> 'payment'") }} as paid_amount,
        'CNY' as currency,

        ---------- status: the trade status and the worst refund status of its lines
        payload ->> 'status' as platform_status,
        (
            select max(o ->> 'refund_status')
            from jsonb_array_elements({{ as_json_array("payload -> 'orders' -> 'order'") }}) as o
            where coalesce(o ->> 'refund_status', 'NO_REFUND') <> 'NO_REFUND'
        ) as refund_status,

        ---------- notes and logistics
        {{ nonblank("payload ->> 'buyer_message'") }} as buyer_note,
        {{ nonblank("payload ->> 'seller_memo'") }} as seller_note,
        {{ nonblank("payload -> 'orders' -> 'order' -> 0 ->> 'logistics_company'") }} as carrier,
        {{ nonblank("payload -> 'orders' -> 'order' -> 0 ->> 'invoice_no'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hs_code'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declared_value'") }} as declared_value,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("payload ->> 'created'") }} as created_at,
        {{ beijing_ts("payload ->> 'pay_time'") }} as paid_at,
        {{ beijing_ts("payload ->> 'consign_time'") }} as shipped_at,
        case
            when payload ->> 'status' in ('TRADE_FINISHED', 'TRADE_BUYER_SIGNED')
                then coalesce(
                    {{ beijing_ts("payload ->> 'end_time'") }},
                    {{ beijing_ts("payload ->> 'modified'") }}
                )
        end as delivered_at,
        case
            when payload ->> 'status' like 'TRADE_CLOSED%'
                then {{ beijing_ts("payload ->> 'end_time'") }}
        end as closed_at,
        coalesce({{ beijing_ts("payload ->> 'modified'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'api' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
