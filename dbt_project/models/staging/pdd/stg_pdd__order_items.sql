with {{ order_item_lines('pdd_orders', "source.payload -> 'item_list'") }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no::integer as line_no,
        null::text as platform_line_id,
        coalesce(
            {{ nonblank("line ->> 'outer_id'") }},
            {{ nonblank("line ->> 'outer_goods_id'") }},
            {{ nonblank("line ->> 'sku_id'") }}
        ) as sku,
        {{ nonblank("line ->> 'sku_id'") }} as platform_sku_id,
        {{ nonblank("line ->> 'goods_name'") }} as title,

        ---------- quantities and amounts (yuan decimals)
        (line ->> 'goods_count')::integer as qty,
        {{ to_yuan("line ->> 'goods_price'") }} as unit_price,
        {{ to_yuan("line ->> 'goods_price'") }} * (line ->> 'goods_count')::integer as line_goods_value,
        null::numeric(14, 2) as line_discount,
        null::numeric(14, 2) as line_paid_amount,

        ---------- status
        null::text as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
