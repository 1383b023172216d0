{#- Warehouse and carrier events that move an order, each mapped to the unified status it
    implies (fulfilment_event_map seed). Carrier events without an order key find their order
    through the tracking number. -#}

with wms_events as (
    select * from {{ ref('stg_merchant_ops__wms_events') }}
),

carrier_tracks as (
    select * from {{ ref('stg_merchant_ops__carrier_tracks') }}
),

orders as (
    select channel, platform_order_no, tracking_no
    from {{ ref('int_orders_unioned') }}
    where tracking_no is not null
),

event_map as (
    select * from {{ ref('fulfilment_event_map') }}
),

wms as (
    select
        channel,
        platform_order_no,
        'wms' as origin,
        event_type,
        event_at,
        warehouse_id,
        null::text as carrier,
        detail as description,
        raw_xid
    from wms_events
    where platform_order_no is not null
),

carrier as (
    select
        coalesce(carrier_tracks.channel, orders.channel) as channel,
        coalesce(carrier_tracks.platform_order_no, orders.platform_order_no) as platform_order_no,
        'carrier' as origin,
        carrier_tracks.event_type,
        carrier_tracks.event_at,
        null::text as warehouse_id,
        carrier_tracks.carrier,
        carrier_tracks.description,
        carrier_tracks.raw_xid
    from carrier_tracks
    left join orders
        on carrier_tracks.platform_order_no is null
        and orders.tracking_no = carrier_tracks.tracking_no
),

unioned as (
    select * from wms
    union all
    select * from carrier
),

mapped as (
    select
        unioned.*,
        event_map.unified_status
    from unioned
    inner join event_map
        on event_map.origin = unioned.origin
        and event_map.event_type = unioned.event_type
    where unioned.platform_order_no is not null
        and unioned.event_at is not null
)

select * from mapped
