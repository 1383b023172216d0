{#- Staging for the sources that land the normalised order payload (the keys documented in
    connectors/csv_orders.py, renamed onto by connectors/db_bridge.py): the SFTP exports
    (regional_a, regional_b), the H5 mall / ERP bridge and the POS import. One macro per model
    shape, so each stg_<source>__orders / __order_items model is a single call with the same
    columns, order and types as int_orders_unioned / int_order_items_unioned expect. -#}

{#- The whole stg_<source>__orders model. Amounts are decimal strings in yuan, times ISO 8601
    with an offset, status the source's own word (mapped by the platform_status_map seed).
    `source_kind` is the lineage value of the `source` column ('sftp', 'db', 'file'). -#}
{% macro normalised_orders_staging(source_table, source_kind) -%}
with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', source_table) }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'shop_id'") }} as shop_id,
        {{ nonblank("payload ->> 'buyer_id'") }} as buyer_id,
        {{ nonblank("payload ->> 'buyer_nick'") }} as buyer_nick,
        {{ nonblank("payload ->> 'buyer_ip'") }} as buyer_ip,

        ---------- receiver (clear values; masked in marts)
        {{ nonblank("coalesce(payload -> '_decrypted' ->> 'name', payload ->> 'receiver_name')") }} as receiver_name,
        {{ nonblank("coalesce(payload -> '_decrypted' ->> 'phone', payload ->> 'receiver_phone')") }} as receiver_phone,
        {{ nonblank("coalesce(payload -> '_decrypted' ->> 'address', payload ->> 'receiver_address')") }} as receiver_address,
        {{ nonblank("payload ->> 'receiver_province'") }} as province,
        {{ nonblank("payload ->> 'receiver_city'") }} as city,
        {{ nonblank("payload ->> 'receiver_district'") }} as district,
        coalesce({{ nonblank("payload ->> 'country'") }}, 'CN') as country,

        ---------- amounts (yuan); a source without the shop/platform split books it all as shop
        {{ to_yuan("payload ->> 'goods_value'") }} as goods_value,
        coalesce({{ to_yuan("payload ->> 'platform_discount'") }}, 0) as platform_discount,
        coalesce(
            {{ to_yuan("payload ->> 'shop_discount'") }},
            coalesce({{ to_yuan("payload ->> 'discount_amount'") }}, 0)
            - coalesce({{ to_yuan("payload ->> 'platform_discount'") }}, 0)
        ) as shop_discount,
        coalesce(
            {{ to_yuan("payload ->> 'discount_amount'") }},
            coalesce({{ to_yuan("payload ->> 'shop_discount'") }}, 0)
            + coalesce({{ to_yuan("payload ->> 'platform_discount'") }}, 0)
        ) as discount_amount,
        coalesce({{ to_yuan("payload ->> 'freight'") }}, 0) as freight,
        {{ to_yuan("payload ->> 'paid_amount'") }} as paid_amount,
        coalesce({{ nonblank("payload ->> 'currency'") }}, 'CNY') as currency,

        ---------- status
        {{ nonblank("payload ->> 'status'") }} as platform_status,
        {{ nonblank("payload ->> 'refund_status'") }} as refund_status,

        ---------- notes and logistics
        {{ nonblank("payload ->> 'buyer_note'") }} as buyer_note,
        {{ nonblank("payload ->> 'seller_note'") }} as seller_note,
        {{ nonblank("payload ->> 'carrier'") }} as carrier,
        {{ nonblank("payload ->> 'tracking_no'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hs_code'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declared_value'") }} as declared_value,

        ---------- timestamps (ISO 8601 with offset; Beijing time when it has none)
        {{ beijing_ts("payload ->> 'created_at'") }} as created_at,
        {{ beijing_ts("payload ->> 'paid_at'") }} as paid_at,
        {{ beijing_ts("payload ->> 'shipped_at'") }} as shipped_at,
        {{ beijing_ts("payload ->> 'delivered_at'") }} as delivered_at,
        {{ beijing_ts("payload ->> 'closed_at'") }} as closed_at,
        coalesce({{ beijing_ts("payload ->> 'modified_at'") }}, source_modified_at) as modified_at,

        ---------- lineage
        '{{ source_kind }}' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
{%- endmacro %}

{#- The whole stg_<source>__order_items model, one row per element of payload `items`.
    `line_no_key`: an item key holding the source's own line number, preferred over the array
    position; `price_expr`: the unit price (yuan) of `line`, e.g. a coalesce over two keys. -#}
{% macro normalised_order_items_staging(source_table, line_no_key=none,
                                        price_expr="line ->> 'price'") -%}
with {{ order_item_lines(source_table, "source.payload -> 'items'") }},

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {%- if line_no_key %}
        coalesce((line ->> '{{ line_no_key }}')::integer, line_no::integer) as line_no,
        {%- else %}
        line_no::integer as line_no,
        {%- endif %}
        null::text as platform_line_id,
        {{ nonblank("line ->> 'sku'") }} as sku,
        {{ nonblank("line ->> 'sku'") }} as platform_sku_id,
        {{ nonblank("line ->> 'title'") }} as title,

        ---------- quantities and amounts (yuan)
        (line ->> 'qty')::integer as qty,
        {{ to_yuan(price_expr) }} as unit_price,
        {{ to_yuan(price_expr) }} * (line ->> 'qty')::integer as line_goods_value,
        null::numeric(14, 2) as line_discount,
        null::numeric(14, 2) as line_paid_amount,

        ---------- status
        null::text as refund_status,

        loaded_at,
        raw_xid
    from lines
)

select * from renamed
{%- endmacro %}
