with source as (
    {{ select_optional_raw('behaviour_events') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'event_id'") }} as event_id,
        {{ nonblank("payload ->> 'buyer_id'") }} as buyer_id,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'sku'") }} as sku,

        ---------- event
        lower({{ nonblank("payload ->> 'event_type'") }}) as event_type,
        {{ nonblank("payload ->> 'ip'") }} as ip,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'event_at'") }} as event_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
