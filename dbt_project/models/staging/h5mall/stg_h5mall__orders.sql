{#- The H5 mall / legacy ERP view (sandbox/erp.py h5_orders_v) read by the SQL bridge, its columns renamed onto the normalised order keys (config/channels.yaml db_bridge.columns).
    Amounts are decimal strings in yuan, times ISO 8601 with an offset, status the source's
    own word (mapped by the platform_status_map seed). -#}

with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'h5mall_orders') }}
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
        'db' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
