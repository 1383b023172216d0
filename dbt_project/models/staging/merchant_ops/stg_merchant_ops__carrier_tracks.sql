with source as (
    {{ select_optional_raw('carrier_tracks') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'tracking_no'") }} as tracking_no,
        {{ nonblank("payload ->> 'carrier'") }} as carrier,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,

        ---------- event
        lower({{ nonblank("payload ->> 'event_type'") }}) as event_type,
        {{ nonblank("payload ->> 'location'") }} as location,
        {{ nonblank("payload ->> 'province'") }} as province,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'event_at'") }} as event_at,
        {{ beijing_ts("payload ->> 'promised_at'") }} as promised_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
