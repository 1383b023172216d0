{#- One row per shipped order (sandbox/ops_records.py Shipment): warehouse, carrier, waybill,
    promised and actual delivery, last tracking status. -#}

with source as (
    {{ select_optional_raw('carrier_shipments') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,
        {{ nonblank("payload ->> 'warehouse_id'") }} as warehouse_id,
        {{ nonblank("payload ->> 'carrier'") }} as carrier,
        {{ nonblank("payload ->> 'tracking_no'") }} as tracking_no,

        ---------- status
        lower({{ nonblank("payload ->> 'status'") }}) as last_track_status,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'shipped_at'") }} as shipped_at,
        {{ beijing_ts("payload ->> 'promised_at'") }} as promised_at,
        {{ beijing_ts("payload ->> 'delivered_at'") }} as delivered_at,
        {{ beijing_ts("payload ->> 'updated_at'") }} as updated_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
