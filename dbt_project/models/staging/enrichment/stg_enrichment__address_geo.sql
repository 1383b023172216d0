{#- Receiver addresses placed by the cpca enrichment asset (raw.address_geo, one row per order:
    the province/city/district and adcode cpca found, the district's coordinates, and whether
    it could parse the address at all). Empty until the asset has run. -#}

with source as (
    {{ select_optional_typed('address_geo', {
        'channel': 'text',
        'platform_order_no': 'text',
        'province': 'text',
        'city': 'text',
        'district': 'text',
        'adcode': 'text',
        'latitude': 'double precision',
        'longitude': 'double precision',
        'is_parsed': 'boolean',
    }) }}
),

renamed as (
    select
        ---------- ids
        channel,
        platform_order_no,

        ---------- place as cpca read it
        province as geo_province,
        city as geo_city,
        district as geo_district,
        adcode,
        latitude,
        longitude,
        is_parsed as is_address_parsed,

        raw_xid
    from source
)

select * from renamed
