{#- Carrier tracking events per waybill (sandbox/ops_records.py TrackingEvent): created,
    picked_up, pickup_failed, in_transit, out_for_delivery, delivered, rejected, returning. -#}

with source as (
    {{ select_optional_raw('carrier_tracks') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'event_id'") }} as event_id,
        {{ nonblank("payload ->> 'tracking_no'") }} as tracking_no,
        {{ nonblank("payload ->> 'carrier'") }} as carrier,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,

        ---------- event (descriptions may hold a courier's phone number: masked in marts)
        lower({{ nonblank("coalesce(payload ->> 'status', payload ->> 'event_type')") }}) as event_type,
        {{ nonblank("payload ->> 'location'") }} as location,
        {{ nonblank("payload ->> 'description'") }} as description,

        ---------- timestamps: the loader's parse of `at` (connectors/merchant_systems.py keeps
        ---------- only records whose `at` is a valid time with a UTC offset), indexed in raw:
        ---------- a filter on it is an index range scan, and no row parses its JSON again
        source_modified_at as event_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
