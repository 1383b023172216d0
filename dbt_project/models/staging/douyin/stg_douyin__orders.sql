with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'douyin_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'shop_id'") }} as shop_id,
        {{ nonblank("payload ->> 'doudian_open_id'") }} as buyer_id,
        {{ nonblank("payload ->> 'user_nick'") }} as buyer_nick,
        {{ nonblank("payload ->> 'buyer_ip'") }} as buyer_ip,

        ---------- receiver: clear values come from the connector's decrypt step
        {{ nonblank("payload -> '_decrypted' ->> 'name'") }} as receiver_name,
        {{ nonblank("payload -> '_decrypted' ->> 'phone'") }} as receiver_phone,
        {{ nonblank("payload -> '_decrypted' ->> 'address'") }} as receiver_address,
        {{ nonblank("payload -> 'post_addr' -> 'province' ->> 'name'") }} as province,
        {{ nonblank("payload -> 'post_addr' -> 'city' ->> 'name'") }} as city,
        {{ nonblank("payload -> 'post_addr' -> 'town' ->> 'name'") }} as district,
        coalesce({{ nonblank("payload ->> 'country'") }}, 'CN') as country,

        ---------- amounts (fen on the wire); talent (达人) subsidies count as platform's
        {{ fen_text_to_yuan("payload ->> 'order_amount'") }} as goods_value,
        coalesce({{ fen_text_to_yuan("payload ->> 'promotion_platform_amount'") }}, 0)
            + coalesce({{ fen_text_to_yuan("payload ->> 'promotion_talent_amount'") }}, 0)
            as platform_discount,
        coalesce({{ fen_text_to_yuan("payload ->> 'promotion_shop_amount'") }}, 0) as shop_discount,
        coalesce({{ fen_text_to_yuan("payload ->> 'promotion_amount'") }}, 0) as discount_amount,
        coalesce({{ fen_text_to_yuan("payload ->> 'post_amount'") }}, 0) as freight,
        {{ fen_text_to_yuan("payload ->> 'pay_amount'") }} as paid_amount,
        'CNY' as currency,

        ---------- status: order status and the lines' after-sale status (7 return, 12 refund, 27 reject)
        payload ->> 'order_status' as platform_status,
        (
            select max(s -> 'after_sale_info' ->> 'after_sale_status')
            from jsonb_array_elements({{ as_json_array("payload -> 'sku_order_list'") }}) as s
            where coalesce(s -> 'after_sale_info' ->> 'after_sale_status', '0') <> '0'
        ) as refund_status,

        ---------- notes and logistics
        {{ nonblank("payload ->> 'buyer_words'") }} as buyer_note,
        {{ nonblank("payload ->> 'seller_words'") }} as seller_note,
        {{ nonblank("coalesce(payload -> 'logistics_info' -> 0 ->> 'company_name', payload -> 'logistics_info' -> 0 ->> 'company')") }} as carrier,
        {{ nonblank("payload -> 'logistics_info' -> 0 ->> 'tracking_no'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hs_code'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declared_value'") }} as declared_value,

        ---------- timestamps (unix seconds on the wire)
        {{ unix_ts("payload ->> 'create_time'") }} as created_at,
        {{ unix_ts("payload ->> 'pay_time'") }} as paid_at,
        {{ unix_ts("payload ->> 'ship_time'") }} as shipped_at,
        case
            when payload ->> 'order_status' = '5' then {{ unix_ts("payload ->> 'finish_time'") }}
        end as delivered_at,
        case
            when payload ->> 'order_status' = '4' then {{ unix_ts("payload ->> 'finish_time'") }}
        end as closed_at,
        coalesce({{ unix_ts("payload ->> 'update_time'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'api' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
