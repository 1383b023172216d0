with {{ order_item_lines('taobao_orders', "source.payload -> 'orders' -> 'order'") }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no::integer as line_no,
        {{ nonblank("line ->> 'oid'") }} as platform_line_id,
        coalesce(
            {{ nonblank("line ->> 'outer_sku_id'") }},
            {{ nonblank("line ->> 'outer_iid'") }},
            {{ nonblank("line ->> 'sku_id'") }}
        ) as sku,
        {{ nonblank("line ->> 'sku_id'") }} as platform_sku_id,
        {{ nonblank("line ->> 'title'") }} as title,

        ---------- quantities and amounts (yuan strings)
        (line ->> 'num')::integer as qty,
        {{ to_yuan("line ->> 'price'") }} as unit_price,
        {{ to_yuan("line ->> 'price'") }} * (line ->> 'num')::integer as line_goods_value,
        coalesce({{ to_yuan("line ->> 'discount_fee'") }}, 0) as line_discount,
        {{ to_yuan("coalesce(line ->> 'divide_order_fee', line ->> 'payment')") }} as line_paid_amount,

        ---------- status
        {{ nonblank("line ->> 'refund_status'") }} as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
