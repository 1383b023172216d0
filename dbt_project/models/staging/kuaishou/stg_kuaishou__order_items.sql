with {{ order_item_lines(
    'kuaishou_orders',
    "coalesce(source.payload -> 'orderItemInfoList', source.payload -> 'orderItemInfo')"
) }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no::integer as line_no,
        {{ nonblank("line ->> 'orderItemId'") }} as platform_line_id,
        coalesce(
            {{ nonblank("line ->> 'goodsCode'") }},
            {{ nonblank("line ->> 'relSkuId'") }},
            {{ nonblank("line ->> 'skuId'") }}
        ) as sku,
        {{ nonblank("line ->> 'skuId'") }} as platform_sku_id,
        {{ nonblank("line ->> 'itemTitle'") }} as title,

        ---------- quantities and amounts (fen on the wire)
        (line ->> 'num')::integer as qty,
        {{ fen_text_to_yuan("line ->> 'price'") }} as unit_price,
        {{ fen_text_to_yuan("line ->> 'price'") }} * (line ->> 'num')::integer as line_goods_value,
        {{ fen_text_to_yuan("line ->> 'discountFee'") }} as line_discount,
        {{ fen_text_to_yuan("line ->> 'price'") }} * (line ->> 'num')::integer
            - coalesce({{ fen_text_to_yuan("line ->> 'discountFee'") }}, 0) as line_paid_amount,

        ---------- status
        null::text as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
