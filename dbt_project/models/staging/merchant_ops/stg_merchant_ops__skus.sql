with source as (
    {{ select_optional_raw('skus') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'sku'") }} as sku,
        {{ nonblank("payload ->> 'title'") }} as title,
        {{ nonblank("payload ->> 'category'") }} as category,

        ---------- numerics
        {{ to_yuan("payload ->> 'list_price'") }} as list_price,
        nullif(payload ->> 'weight_kg', '')::numeric as weight_kg,
        nullif(payload ->> 'safety_stock', '')::integer as safety_stock,

        ---------- booleans
        coalesce((payload ->> 'is_hot')::boolean, false) as is_hot,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
