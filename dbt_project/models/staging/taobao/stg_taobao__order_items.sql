with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'taobao_orders') }}
),

lines as (
    select
        source.channel,
        source.platform_order_no,
        source.loaded_at,
        source.raw_xid,
        line.value as line,
        line.ordinality as line_no
    from source
    cross join lateral jsonb_array_elements(
        {{ as_json_array("source.payload -> 'orders' -> 'order'") }}
    ) with ordinality as line (value, ordinality)
),

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
