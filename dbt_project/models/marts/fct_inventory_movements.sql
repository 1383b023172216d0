{{
    config(
        materialized='incremental',
        unique_key='movement_key',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['movement_key'], 'unique': True},
            {'columns': ['warehouse_id', 'sku']},
            {'columns': ['channel', 'platform_order_no']},
        ] + build_indexes(),
    )
}}

{# One row per stock movement in a warehouse: WMS movements (inbound, adjust, lock, release,
   ship, return) and OrderPulse's own stock locks (ops.inventory_locks). `on_hand_change` and
   `locked_change` split the signed quantity by what it changes. #}

-- depends_on: {{ source('ops', 'inventory_locks') }}

with wms as (
    select * from {{ ref('stg_merchant_systems__stock_movements') }}
    {% if is_incremental() %}
    where {{ unseen_raw_rows() }}
    {% endif %}
),

locks as (
    select *, xmin::text::bigint as row_xid from {{ source('ops', 'inventory_locks') }}
    {% if is_incremental() %}
    where xmin::text::bigint >= {{ last_built_xid() }}
    {% endif %}
),

unioned as (
    select
        coalesce(
            movement_id,
            {{ opaque_key("concat_ws('|', warehouse_id, sku, movement_kind, moved_at::text, qty::text)") }}
        ) as movement_key,
        'wms' as origin,
        warehouse_id,
        sku,
        movement_kind,
        qty,
        channel,
        platform_order_no,
        moved_at
    from wms
    union all
    select
        {{ opaque_key("concat_ws('|', 'lock', channel, platform_order_no, sku, warehouse_id)") }}
            as movement_key,
        'orderpulse' as origin,
        warehouse_id,
        sku,
        'lock_' || coalesce(state, 'unknown') as movement_kind,
        qty,
        channel,
        platform_order_no,
        null::timestamptz as moved_at
    from locks
),

final as (
    select
        ---------- ids
        movement_key,
        origin,
        warehouse_id,
        sku,
        channel,
        platform_order_no,

        ---------- movement
        movement_kind,
        qty,
        case when movement_kind in ('inbound', 'adjust', 'ship', 'return') then qty else 0 end
            as on_hand_change,
        case when movement_kind in ('lock', 'release') then qty else 0 end as locked_change,

        ---------- timestamps
        moved_at,

        ---------- build bookkeeping
        {{ build_columns() }}
    from unioned
)

select * from final
