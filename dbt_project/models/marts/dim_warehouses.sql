{# One row per warehouse: master data, stock-sync freshness and shipping record. #}

with warehouses as (
    select * from {{ ref('stg_merchant_systems__warehouses') }}
),

stock as (
    select * from {{ ref('stg_merchant_systems__wms_stock') }}
),

routing as (
    select routing_warehouse_id as warehouse_id, count(*) as routed_orders
    from {{ ref('fct_orders') }}
    where routing_warehouse_id is not null
    group by 1
),

latest_master as (
    select distinct on (warehouse_id) *
    from warehouses
    where warehouse_id is not null
    order by warehouse_id, loaded_at desc
),

stock_sync as (
    select
        warehouse_id,
        count(distinct sku) as skus_stocked,
        sum(on_hand) as units_on_hand,
        sum(locked) as units_locked,
        max(last_sync_at) as last_stock_sync_at
    from stock
    group by 1
),

-- warehouses seen only in decisions still get a row (with unknown master data)
all_ids as (
    select warehouse_id from latest_master
    union
    select warehouse_id from stock_sync
    union
    select warehouse_id from routing
),

final as (
    select
        ---------- ids
        all_ids.warehouse_id,
        coalesce(latest_master.name, all_ids.warehouse_id) as name,
        latest_master.region,

        ---------- location
        latest_master.province,
        latest_master.city,
        latest_master.district,
        latest_master.latitude,
        latest_master.longitude,

        ---------- kind
        coalesce(latest_master.is_front, false) as is_front,

        ---------- stock
        coalesce(stock_sync.skus_stocked, 0) as skus_stocked,
        coalesce(stock_sync.units_on_hand, 0) as units_on_hand,
        coalesce(stock_sync.units_locked, 0) as units_locked,
        stock_sync.last_stock_sync_at,
        coalesce(
            stock_sync.last_stock_sync_at
                < now() - interval '{{ var("stock_sync_stale_minutes", 30) }} minutes',
            true
        ) as is_stock_sync_stale,

        ---------- activity
        coalesce(routing.routed_orders, 0) as routed_orders
    from all_ids
    left join latest_master using (warehouse_id)
    left join stock_sync using (warehouse_id)
    left join routing using (warehouse_id)
)

select * from final
