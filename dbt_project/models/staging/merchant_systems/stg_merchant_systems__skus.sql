{#- The SKU catalogue (sandbox/catalog.py Sku). -#}

with source as (
    {{ select_optional_raw('skus') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'sku'") }} as sku,
        {{ nonblank("payload ->> 'title'") }} as title,
        {{ nonblank("payload ->> 'category'") }} as category,
        {{ nonblank("payload ->> 'barcode'") }} as barcode,
        {{ nonblank("payload ->> 'hs_code'") }} as hs_code,

        ---------- numerics
        {{ to_yuan("coalesce(payload ->> 'price', payload ->> 'list_price')") }} as list_price,
        nullif(payload ->> 'weight_kg', '')::numeric as weight_kg,

        ---------- booleans
        coalesce((payload ->> 'is_hot')::boolean, false) as is_hot,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
