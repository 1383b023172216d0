with {{ order_item_lines('jd_orders', "source.payload -> 'itemInfoList'") }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no::integer as line_no,
        null::text as platform_line_id,
        coalesce(
            {{ nonblank("line ->> 'outerSkuId'") }},
            {{ nonblank("line ->> 'productNo'") }},
            {{ nonblank("line ->> 'skuId'") }}
        ) as sku,
        {{ nonblank("line ->> 'skuId'") }} as platform_sku_id,
        {{ nonblank("line ->> 'skuName'") }} as title,

        ---------- quantities and amounts (yuan strings; itemTotal is the quantity)
        (line ->> 'itemTotal')::integer as qty,
        {{ to_yuan("line ->> 'jdPrice'") }} as unit_price,
        {{ to_yuan("line ->> 'jdPrice'") }} * (line ->> 'itemTotal')::integer as line_goods_value,
        null::numeric(14, 2) as line_discount,
        null::numeric(14, 2) as line_paid_amount,

        ---------- status
        null::text as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
