{#- The storefront behaviour log (sandbox/ops_records.py BehaviourEvent): view, cart_add,
    cart_remove, submit_order, pay. -#}

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
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,

        ---------- event
        lower({{ nonblank("coalesce(payload ->> 'action', payload ->> 'event_type')") }}) as action,
        {{ nonblank("payload ->> 'ip'") }} as ip,
        {{ nonblank("payload ->> 'device'") }} as device,

        ---------- timestamps: the loader's parse of `at` (connectors/merchant_systems.py keeps
        ---------- only records whose `at` is a valid time with a UTC offset), indexed in raw:
        ---------- a filter on it is an index range scan, and no row parses its JSON again
        source_modified_at as event_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
