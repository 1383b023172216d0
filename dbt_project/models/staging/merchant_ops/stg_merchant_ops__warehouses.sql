with source as (
    {{ select_optional_raw('warehouses') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'warehouse_id'") }} as warehouse_id,
        {{ nonblank("payload ->> 'name'") }} as name,

        ---------- location
        {{ nonblank("payload ->> 'province'") }} as province,
        {{ nonblank("payload ->> 'city'") }} as city,
        {{ nonblank("payload ->> 'district'") }} as district,
        nullif(payload ->> 'latitude', '')::double precision as latitude,
        nullif(payload ->> 'longitude', '')::double precision as longitude,

        ---------- kind
        coalesce((payload ->> 'is_front')::boolean, false) as is_front,
        coalesce((payload ->> 'is_national')::boolean, false) as is_national,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
