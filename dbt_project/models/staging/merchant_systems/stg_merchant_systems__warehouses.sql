{#- Warehouse master data (sandbox/catalog.py Warehouse). -#}

with source as (
    {{ select_optional_raw('warehouses') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'warehouse_id'") }} as warehouse_id,
        {{ nonblank("payload ->> 'name'") }} as name,
        {{ nonblank("payload ->> 'region'") }} as region,

        ---------- location
        {{ nonblank("payload ->> 'province'") }} as province,
        {{ nonblank("payload ->> 'city'") }} as city,
        {{ nonblank("payload ->> 'district'") }} as district,
        nullif(payload ->> 'latitude', '')::double precision as latitude,
        nullif(payload ->> 'longitude', '')::double precision as longitude,

        ---------- booleans
        coalesce((payload ->> 'is_front')::boolean, false) as is_front,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
