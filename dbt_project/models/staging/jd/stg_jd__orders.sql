with source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', 'jd_orders') }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,
        {{ nonblank("payload ->> 'venderId'") }} as shop_id,
        {{ nonblank("coalesce(payload ->> 'open_id_buyer', payload ->> 'realPin', payload ->> 'pin')") }} as buyer_id,
        {{ nonblank("coalesce(payload ->> 'pin', payload ->> 'realPin')") }} as buyer_nick,
        {{ nonblank("payload ->> 'buyerIp'") }} as buyer_ip,

        ---------- receiver: clear values come from the connector's decrypt step
        {{ nonblank("payload -> '_decrypted' ->> 'name'") }} as receiver_name,
        {{ nonblank("payload -> '_decrypted' ->> 'phone'") }} as receiver_phone,
        {{ nonblank("payload -> '_decrypted' ->> 'address'") }} as receiver_address,
        {{ nonblank("payload -> 'consigneeInfo' ->> 'province'") }} as province,
        {{ nonblank("payload -> 'consigneeInfo' ->> 'city'") }} as city,
        {{ nonblank("payload -> 'consigneeInfo' ->> 'county'") }} as district,
        coalesce({{ nonblank("payload -> 'consigneeInfo' ->> 'country'") }}, 'CN') as country,

        ---------- amounts (yuan strings); the seller's share of discounts is sellerDiscount,
        ---------- the rest of (goods + freight - payment) is the platform's
        {{ to_yuan("payload ->> 'orderTotalPrice'") }} as goods_value,
        greatest(
            {{ to_yuan("payload ->> 'orderTotalPrice'") }}
            + coalesce({{ to_yuan("payload ->> 'freightPrice'") }}, 0)
            - {{ to_yuan("payload ->> 'orderPayment'") }}
            - coalesce({{ to_yuan("payload ->> 'sellerDiscount'") }}, 0),
            0
        ) as platform_discount,
        coalesce({{ to_yuan("payload ->> 'sellerDiscount'") }}, 0) as shop_discount,
        {{ to_yuan("payload ->> 'orderTotalPrice'") }}
            + coalesce({{ to_yuan("payload ->> 'freightPrice'") }}, 0)
            - {{ to_yuan("payload ->> 'orderPayment'") }} as discount_amount,
        coalesce({{ to_yuan("payload ->> 'freightPrice'") }}, 0) as freight,
        {{ to_yuan("payload ->> 'orderPayment'") }} as paid_amount,
        'CNY' as currency,

        ---------- status
        payload ->> 'orderState' as platform_status,
        {{ nonblank("payload ->> 'afsStatus'") }} as refund_status,

        ---------- notes and logistics
        {{ nonblank("payload ->> 'orderRemark'") }} as buyer_note,
        {{ nonblank("payload ->> 'venderRemark'") }} as seller_note,
        {{ nonblank("payload ->> 'logisticsId'") }} as carrier,
        {{ nonblank("payload ->> 'waybill'") }} as tracking_no,

        ---------- cross-border
        {{ nonblank("payload -> 'customs' ->> 'hsCode'") }} as hs_code,
        {{ to_yuan("payload -> 'customs' ->> 'declaredValue'") }} as declared_value,

        ---------- timestamps (Beijing time strings; 0001-01-01 = unset)
        {{ beijing_ts("payload ->> 'orderStartTime'") }} as created_at,
        {{ beijing_ts("payload ->> 'paymentConfirmTime'") }} as paid_at,
        {{ beijing_ts("payload ->> 'shipTime'") }} as shipped_at,
        case
            when payload ->> 'orderState' in ('FINISHED_L', 'LOCKED')
                then {{ beijing_ts("payload ->> 'orderEndTime'") }}
        end as delivered_at,
        case
            when payload ->> 'orderState' = 'TRADE_CANCELED'
                then {{ beijing_ts("payload ->> 'orderEndTime'") }}
        end as closed_at,
        coalesce({{ beijing_ts("payload ->> 'modified'") }}, source_modified_at) as modified_at,

        ---------- lineage
        'api' as source,
        content_hash,
        loaded_at,
        raw_xid
    from source
)

select * from renamed
