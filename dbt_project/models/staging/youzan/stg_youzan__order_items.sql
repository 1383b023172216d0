with {{ order_item_lines(
    'youzan_orders',
    "coalesce(source.payload -> 'full_order_info', source.payload) -> 'orders'"
) }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no::integer as line_no,
        {{ nonblank("line ->> 'oid'") }} as platform_line_id,
        coalesce(
            {{ nonblank("line ->> 'outer_sku_id'") }},
            {{ nonblank("line ->> 'outer_item_id'") }},
            {{ nonblank("line ->> 'sku_id'") }}
        ) as sku,
        {{ nonblank("line ->> 'sku_id'") }} as platform_sku_id,
        {{ nonblank("line ->> 'title'") }} as title,

        ---------- quantities and amounts (yuan)
        (line ->> 'num')::integer as qty,
        {{ to_yuan("line ->> 'price'") }} as unit_price,
        {{ to_yuan("line ->> 'price'") }} * (line ->> 'num')::integer as line_goods_value,
        null::numeric(14, 2) as line_discount,
        {{ to_yuan("line ->> 'payment'") }} as line_paid_amount,

        ---------- status
        {{ nonblank("line ->> 'refund_status'") }} as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
