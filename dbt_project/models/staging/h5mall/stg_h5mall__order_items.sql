with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'h5mall_orders') }}
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
        {{ as_json_array("source.payload -> 'items'") }}
    ) with ordinality as line (value, ordinality)
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        coalesce((line ->> 'line_no')::integer, line_no::integer) as line_no,
        null::text as platform_line_id,
        {{ nonblank("line ->> 'sku'") }} as sku,
        {{ nonblank("line ->> 'sku'") }} as platform_sku_id,
        {{ nonblank("line ->> 'title'") }} as title,

        ---------- quantities and amounts (yuan)
        (line ->> 'qty')::integer as qty,
        {{ to_yuan("coalesce(line ->> 'unit_price', line ->> 'price')") }} as unit_price,
        {{ to_yuan("coalesce(line ->> 'unit_price', line ->> 'price')") }} * (line ->> 'qty')::integer
            as line_goods_value,
        null::numeric(14, 2) as line_discount,
        null::numeric(14, 2) as line_paid_amount,

        ---------- status
        null::text as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
