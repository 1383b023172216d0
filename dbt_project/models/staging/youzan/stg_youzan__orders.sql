with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'youzan_orders') }}
),

flattened as (
    select
        source.*,
        coalesce(payload -> 'full_order_info', payload) as info
    from source
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("coalesce(info -> 'order_info' ->> 'kdt_id', info ->> 'kdt_id', payload ->> 'kdt_id')") }} as shop_id,
        {{ nonblank("info -> 'buyer_info' ->> 'yz_open_id'") }} as buyer_id,
        {{ nonblank("info -> 'buyer_info' ->> 'fans_nickname'") }} as buyer_nick,
        {{ nonblank("info -> 'buyer_info' ->> 'buyer_ip'") }} as buyer_ip,

        ---------- receiver: clear values come from the connector's decrypt step
        {{ nonblank("payload -> '_decrypted' ->> 'name'") }} as receiver_name,
        {{ nonblank("payload -> '_decrypted' ->> 'phone'") }} as receiver_phone,
        {{ nonblank("payload -> '_decrypted' ->> 'address'") }} as receiver_address,
        {{ nonblank("info -> 'address_info' ->> 'delivery_province'") }} as province,
        {{ nonblank("info -> 'address_info' ->> 'delivery_city'") }} as city,
        {{ nonblank("info -> 'address_info' ->> 'delivery_district'") }} as district,
        coalesce({{ nonblank("info -> 'address_info' ->> 'delivery_country'") }}, 'CN') as country,

        ---------- amounts (yuan strings); coupons by sponsor from order_promotion.order[]
        {{ to_yuan("info -> 'pay_info' ->> 'total_fee'") }} as goods_value,
        coalesce({{ youzan_coupons('platform') }}, 0) as platform_discount,
        coalesce(
            {{ youzan_coupons('shop') }},
            {{ to_yuan("info -> 'pay_info' ->> 'total_fee'") }}
            + coalesce({{ to_yuan("info -> 'pay_info' ->> 'post_fee'") }}, 0)
            - {{ to_yuan("info -> 'pay_info' ->> 'payment'") }}
            - coalesce({{ youzan_coupons('platform') }}, 0)
        ) as shop_discount,
        {{ to_yuan("info -> 'pay_info' ->> 'total_fee'") }}
            + coalesce({{ to_yuan("info -> 'pay_info' ->> 'post_fee'") }}, 0)
            - {{ to_yuan("info -> 'pay_info' ->> 'payment'") }} as discount_amount,
        coalesce({{ to_yuan("info -> 'pay_info' ->> 'post_fee'") }}, 0) as freight,
        {{ to_yuan("info -> 'pay_info' ->> 'payment'") }} as paid_amount,
        'CNY' as currency,

        ---------- status; refund_state 0 none, 11 refund in progress (return or rejected
        ---------- delivery), 12 fully refunded
        info -> 'order_info' ->> 'status' as platform_status,
        nullif({{ nonblank("info -> 'order_info' ->> 'refund_state'") }}, '0') as refund_status,

        ---------- notes and logistics
        {{ nonblank("coalesce(info -> 'remark_info' ->> 'buyer_message', info -> 'order_info' ->> 'buyer_message')") }} as buyer_note,
        {{ nonblank("coalesce(info -> 'remark_info' ->> 'trade_memo', info -> 'order_info' ->> 'trade_memo')") }} as seller_note,
        {{ nonblank("payload -> 'delivery_order' -> 0 -> 'dists' -> 0 -> 'dist_info' ->> 'express_name'") }} as carrier,
        {{ nonblank("payload -> 'delivery_order' -> 0 -> 'dists' -> 0 -> 'dist_info' ->> 'express_no'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("coalesce(info, payload) -> 'customs' ->> 'hs_code'") }} as hs_code,
        {{ to_yuan("coalesce(info, payload) -> 'customs' ->> 'declared_value'") }} as declared_value,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("info -> 'order_info' ->> 'created'") }} as created_at,
        {{ beijing_ts("info -> 'order_info' ->> 'pay_time'") }} as paid_at,
        {{ beijing_ts("info -> 'order_info' ->> 'consign_time'") }} as shipped_at,
        case
            when info -> 'order_info' ->> 'status' = 'TRADE_SUCCESS'
                then {{ beijing_ts("info -> 'order_info' ->> 'success_time'") }}
        end as delivered_at,
        case
            when info -> 'order_info' ->> 'status' = 'TRADE_CLOSED'
                then {{ beijing_ts("info -> 'order_info' ->> 'close_time'") }}
        end as closed_at,
        coalesce({{ beijing_ts("info -> 'order_info' ->> 'update_time'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'api' as source,
        content_hash,
        loaded_at,
        raw_xid
    from flattened
)

select * from renamed
