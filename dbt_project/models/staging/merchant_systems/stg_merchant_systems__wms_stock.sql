{#- Stock levels the WMS last pushed per warehouse and SKU (sandbox/ops_records.py StockLevel). -#}

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
        coalesce(nullif(payload ->> 'locked', '')::integer, 0) as locked,
        nullif(payload ->> 'available', '')::integer as available,
        nullif(payload ->> 'safety_stock', '')::integer as safety_stock,

        ---------- timestamps
        coalesce(
            {{ beijing_ts("coalesce(payload ->> 'last_sync_at', payload ->> 'synced_at')") }},
            loaded_at
        ) as last_sync_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
