with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'kuaishou_orders') }}
),

flattened as (
    select
        source.*,
        payload -> 'orderBaseInfo' as base,
        payload -> 'orderAddress' as addr
    from source
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("coalesce(base ->> 'sellerId', base ->> 'sellerOpenId')") }} as shop_id,
        {{ nonblank("base ->> 'buyerOpenId'") }} as buyer_id,
        {{ nonblank("base ->> 'buyerNick'") }} as buyer_nick,
        {{ nonblank("base ->> 'buyerIp'") }} as buyer_ip,

        ---------- receiver: clear values come from the connector's decrypt step
        {{ nonblank("payload -> '_decrypted' ->> 'name'") }} as receiver_name,
        {{ nonblank("payload -> '_decrypted' ->> 'phone'") }} as receiver_phone,
        {{ nonblank("payload -> '_decrypted' ->> 'address'") }} as receiver_address,
        {{ nonblank("addr ->> 'province'") }} as province,
        {{ nonblank("addr ->> 'city'") }} as city,
        {{ nonblank("addr ->> 'district'") }} as district,
        coalesce({{ nonblank("addr ->> 'country'") }}, 'CN') as country,

        ---------- amounts (fen on the wire)
        {{ fen_text_to_yuan("base ->> 'totalFee'") }} as goods_value,
        coalesce({{ fen_text_to_yuan("base ->> 'platformDiscountFee'") }}, 0) as platform_discount,
        coalesce(
            {{ fen_text_to_yuan("base ->> 'sellerDiscountFee'") }},
            coalesce({{ fen_text_to_yuan("base ->> 'discountFee'") }}, 0)
            - coalesce({{ fen_text_to_yuan("base ->> 'platformDiscountFee'") }}, 0)
        ) as shop_discount,
        coalesce({{ fen_text_to_yuan("base ->> 'discountFee'") }}, 0) as discount_amount,
        coalesce({{ fen_text_to_yuan("base ->> 'expressFee'") }}, 0) as freight,
        coalesce(
            {{ fen_text_to_yuan("base ->> 'payAmount'") }},
            {{ fen_text_to_yuan("base ->> 'totalFee'") }}
            - coalesce({{ fen_text_to_yuan("base ->> 'discountFee'") }}, 0)
            + coalesce({{ fen_text_to_yuan("base ->> 'expressFee'") }}, 0)
        ) as paid_amount,
        'CNY' as currency,

        ---------- status: 10 unpaid, 30 paid, 40 shipped, 50 received, 70 success, 80 closed;
        ---------- the after-sale kind from orderRefundList.refundType (1 refund, 2 return, 3 reject)
        base ->> 'status' as platform_status,
        (
            select max(r ->> 'refundType')
            from jsonb_array_elements({{ as_json_array("payload -> 'orderRefundList'") }}) as r
        ) as refund_status,

        ---------- notes and logistics
        {{ nonblank("base ->> 'remark'") }} as buyer_note,
        {{ nonblank("coalesce(base ->> 'sellerRemark', payload ->> 'sellerNote')") }} as seller_note,
        {{ nonblank("coalesce(payload -> 'orderLogisticsInfo' -> 0 ->> 'logisticsCompany', payload -> 'orderLogisticsInfo' -> 0 ->> 'expressCode')") }} as carrier,
        {{ nonblank("payload -> 'orderLogisticsInfo' -> 0 ->> 'expressNo'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hsCode'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declaredValue'") }} as declared_value,

        ---------- timestamps (unix milliseconds on the wire)
        {{ unix_ms_ts("base ->> 'createTime'") }} as created_at,
        {{ unix_ms_ts("base ->> 'payTime'") }} as paid_at,
        {{ unix_ms_ts("base ->> 'sendTime'") }} as shipped_at,
        {{ unix_ms_ts("base ->> 'recvTime'") }} as delivered_at,
        null::timestamptz as closed_at,
        coalesce({{ unix_ms_ts("base ->> 'updateTime'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'api' as source,
        content_hash,
        loaded_at,
        raw_xid
    from flattened
)

select * from renamed
