{#- WMS stock movements (sandbox/ops_records.py StockMovement): `qty` is the signed change of
    on-hand stock (inbound, adjust, ship, return) or of locked stock (lock, release). -#}

with source as (
    {{ select_optional_raw('stock_movements') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'movement_id'") }} as movement_id,
        {{ nonblank("payload ->> 'warehouse_id'") }} as warehouse_id,
        {{ nonblank("payload ->> 'sku'") }} as sku,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,

        ---------- movement
        lower({{ nonblank("payload ->> 'kind'") }}) as movement_kind,
        nullif(payload ->> 'qty', '')::integer as qty,

        ---------- timestamps: the loader's parse of `at` (connectors/merchant_systems.py keeps
        ---------- only records whose `at` is a valid time with a UTC offset), indexed in raw:
        ---------- a filter on it is an index range scan, and no row parses its JSON again
        source_modified_at as moved_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
