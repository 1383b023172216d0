with {{ order_item_lines('douyin_orders', "source.payload -> 'sku_order_list'") }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no::integer as line_no,
        {{ nonblank("line ->> 'order_id'") }} as platform_line_id,
        coalesce(
            {{ nonblank("line ->> 'out_sku_id'") }},
            {{ nonblank("line ->> 'out_product_id'") }},
            {{ nonblank("line ->> 'sku_id'") }}
        ) as sku,
        {{ nonblank("line ->> 'sku_id'") }} as platform_sku_id,
        {{ nonblank("line ->> 'product_name'") }} as title,

        ---------- quantities and amounts (fen: origin_amount = unit price, sum_amount = x qty)
        (line ->> 'item_num')::integer as qty,
        {{ fen_text_to_yuan("line ->> 'origin_amount'") }} as unit_price,
        coalesce(
            {{ fen_text_to_yuan("line ->> 'sum_amount'") }},
            {{ fen_text_to_yuan("line ->> 'origin_amount'") }} * (line ->> 'item_num')::integer
        ) as line_goods_value,
        coalesce({{ fen_text_to_yuan("line ->> 'promotion_amount'") }}, 0) as line_discount,
        {{ fen_text_to_yuan("line ->> 'pay_amount'") }} as line_paid_amount,

        ---------- status
        {{ nonblank("line -> 'after_sale_info' ->> 'after_sale_status'") }} as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
