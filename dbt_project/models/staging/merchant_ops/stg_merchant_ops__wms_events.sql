with source as (
    {{ select_optional_raw('wms_events') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'event_id'") }} as event_id,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,
        {{ nonblank("payload ->> 'warehouse_id'") }} as warehouse_id,
        {{ nonblank("payload ->> 'sku'") }} as sku,

        ---------- event
        lower({{ nonblank("payload ->> 'event_type'") }}) as event_type,
        nullif(payload ->> 'qty', '')::integer as qty,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'event_at'") }} as event_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
