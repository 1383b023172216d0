with source as (
    {{ select_optional_raw('wms_stock') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'warehouse_id'") }} as warehouse_id,
        {{ nonblank("payload ->> 'sku'") }} as sku,

        ---------- quantities
        nullif(payload ->> 'on_hand', '')::integer as on_hand,
        coalesce(nullif(payload ->> 'reserved', '')::integer, 0) as reserved,

        ---------- timestamps
        coalesce({{ beijing_ts("payload ->> 'synced_at'") }}, loaded_at) as synced_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
