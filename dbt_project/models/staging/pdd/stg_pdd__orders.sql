with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'pdd_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("coalesce(payload ->> 'mall_id', payload ->> 'shop_id')") }} as shop_id,
        {{ nonblank("coalesce(payload ->> 'open_id', payload ->> 'buyer_id')") }} as buyer_id,
        {{ nonblank("payload ->> 'buyer_nick'") }} as buyer_nick,
        {{ nonblank("payload ->> 'buyer_ip'") }} as buyer_ip,

        ---------- receiver: clear values come from the connector's decrypt step
        {{ nonblank("payload -> '_decrypted' ->> 'name'") }} as receiver_name,
        {{ nonblank("payload -> '_decrypted' ->> 'phone'") }} as receiver_phone,
        {{ nonblank("payload -> '_decrypted' ->> 'address'") }} as receiver_address,
        {{ nonblank("payload ->> 'province'") }} as province,
        {{ nonblank("payload ->> 'city'") }} as city,
        {{ nonblank("payload ->> 'town'") }} as district,
        coalesce({{ nonblank("payload ->> 'country'") }}, 'CN') as country,

        ---------- amounts (yuan decimals): pay = goods - discount + postage
        {{ to_yuan("payload ->> 'goods_amount'") }} as goods_value,
        coalesce({{ to_yuan("payload ->> 'platform_discount'") }}, 0) as platform_discount,
        coalesce({{ to_yuan("payload ->> 'seller_discount'") }}, 0) as shop_discount,
        coalesce({{ to_yuan("payload ->> 'discount_amount'") }}, 0) as discount_amount,
        coalesce({{ to_yuan("payload ->> 'postage'") }}, 0) as freight,
        {{ to_yuan("payload ->> 'pay_amount'") }} as paid_amount,
        'CNY' as currency,

        ---------- status: confirm_status 0 unpaid / 2 cancelled, else the shipping state
        ---------- order_status (1 awaiting shipment, 2 shipped, 3 received); the after-sale
        ---------- kind from after_sales_status (3 rejected, 7 return, 10 refunded)
        case payload ->> 'confirm_status'
            when '0' then 'unconfirmed'
            when '2' then 'cancelled'
            else payload ->> 'order_status'
        end as platform_status,
        case
            when coalesce(payload ->> 'after_sales_status', '0') <> '0'
                then payload ->> 'after_sales_status'
            when payload ->> 'refund_status' = '4' then '10'
            when payload ->> 'refund_status' in ('2', '3') then '7'
        end as refund_status,

        ---------- notes and logistics
        {{ nonblank("payload ->> 'buyer_memo'") }} as buyer_note,
        {{ nonblank("payload ->> 'remark'") }} as seller_note,
        {{ nonblank("payload ->> 'logistics_id'") }} as carrier,
        {{ nonblank("payload ->> 'tracking_number'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hs_code'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declared_value'") }} as declared_value,

        ---------- timestamps (Beijing time strings)
        {{ beijing_ts("payload ->> 'created_time'") }} as created_at,
        {{ beijing_ts("payload ->> 'pay_time'") }} as paid_at,
        {{ beijing_ts("payload ->> 'shipping_time'") }} as shipped_at,
        {{ beijing_ts("payload ->> 'receive_time'") }} as delivered_at,
        null::timestamptz as closed_at,
        coalesce({{ beijing_ts("payload ->> 'updated_at'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'api' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
