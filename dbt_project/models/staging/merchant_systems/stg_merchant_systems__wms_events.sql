{#- WMS events per order (sandbox/ops_records.py WmsEvent): allocate, allocate_failed, pick,
    pack, ship (left the warehouse), return_received. -#}

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

        ---------- event
        lower({{ nonblank("coalesce(payload ->> 'type', payload ->> 'event_type')") }}) as event_type,
        {{ nonblank("payload ->> 'operator'") }} as operator,
        {{ nonblank("payload ->> 'detail'") }} as detail,

        ---------- timestamps: the loader's parse of `at` (connectors/merchant_systems.py keeps
        ---------- only records whose `at` is a valid time with a UTC offset), indexed in raw:
        ---------- a filter on it is an index range scan, and no row parses its JSON again
        source_modified_at as event_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
