{#- The H5 mall / legacy ERP view h5_orders_v (sandbox/erp.py), one row per order as read by
    the SQL bridge: amounts numeric yuan, times with offsets, clear receiver values. -#}

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
        {{ nonblank("payload ->> 'buyer_id'") }} as buyer_nick,
        {{ nonblank("payload ->> 'buyer_ip'") }} as buyer_ip,

        ---------- receiver
        {{ nonblank("coalesce(payload -> '_decrypted' ->> 'name', payload ->> 'receiver_name')") }} as receiver_name,
        {{ nonblank("coalesce(payload -> '_decrypted' ->> 'phone', payload ->> 'receiver_phone')") }} as receiver_phone,
        {{ nonblank("coalesce(payload -> '_decrypted' ->> 'address', payload ->> 'address')") }} as receiver_address,
        {{ nonblank("payload ->> 'province'") }} as province,
        {{ nonblank("payload ->> 'city'") }} as city,
        {{ nonblank("payload ->> 'district'") }} as district,
        coalesce({{ nonblank("payload ->> 'country'") }}, 'CN') as country,

        ---------- amounts (numeric yuan)
        {{ to_yuan("payload ->> 'goods_amount'") }} as goods_value,
        coalesce({{ to_yuan("payload ->> 'platform_coupon_amount'") }}, 0) as platform_discount,
        coalesce({{ to_yuan("payload ->> 'shop_coupon_amount'") }}, 0) as shop_discount,
        coalesce({{ to_yuan("payload ->> 'platform_coupon_amount'") }}, 0)
            + coalesce({{ to_yuan("payload ->> 'shop_coupon_amount'") }}, 0) as discount_amount,
        coalesce({{ to_yuan("payload ->> 'freight'") }}, 0) as freight,
        {{ to_yuan("payload ->> 'pay_amount'") }} as paid_amount,
        'CNY' as currency,

        ---------- status: 10 待付款 20 待发货 30 已发货 40 已完成 50 已关闭 60 售后中
        payload ->> 'status' as platform_status,
        null::text as refund_status,

        ---------- notes and logistics
        {{ nonblank("payload ->> 'buyer_note'") }} as buyer_note,
        {{ nonblank("payload ->> 'seller_note'") }} as seller_note,
        {{ nonblank("payload ->> 'carrier'") }} as carrier,
        {{ nonblank("payload ->> 'tracking_no'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hs_code'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declared_value'") }} as declared_value,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'created_at'") }} as created_at,
        {{ beijing_ts("payload ->> 'paid_at'") }} as paid_at,
        {{ beijing_ts("payload ->> 'shipped_at'") }} as shipped_at,
        {{ beijing_ts("payload ->> 'finished_at'") }} as delivered_at,
        {{ beijing_ts("coalesce(payload ->> 'closed_at', payload ->> 'after_sale_at')") }} as closed_at,
        coalesce({{ beijing_ts("payload ->> 'updated_at'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'db' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
