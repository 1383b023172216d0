{#- the stock locks ask for the WMS's latest warehouse of every open order: an index-only read
    of the WMS events instead of a scan of all of them (2.7 -> 1.0 s at 1,000,000 orders) -#}
{%- set wms_latest = "(channel, platform_order_no, event_at desc) include (warehouse_id)"
    ~ " where origin = 'wms' and warehouse_id is not null" -%}
{#- the status models and the health checks read the events of each changed order: an order's
    events arrive over days and lie on as many heap pages, so the order's key alone cost a page
    per event (33,381 pages, 9.6 s for 9,941 orders at 1,000,000); with what they read in the
    index, one leaf page an order (7,129 pages), and the second reader of the same orders finds
    those pages in memory. It serves every lookup by order, so it replaces the plain key index;
    `ofe_events_of_order` replaces `ofe_order_events` (without `event_type` and `warehouse_id`,
    which the health checks read) on a warehouse built before. -#}
{%- set order_events = "(channel, platform_order_no)"
    ~ " include (unified_status, event_at, origin, event_type, warehouse_id)" -%}
{{
    config(
        materialized='incremental',
        unique_key='fulfillment_event_key',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['fulfillment_event_key'], 'unique': True},
            {'columns': ['tracking_no']},
        ] + build_indexes(),
        ensured_indexes={'ofe_wms_latest': wms_latest, 'ofe_events_of_order': order_events},
        post_hook=[
            "{{ ensure_indexes() }}",
            "{{ drop_superseded_index(['channel', 'platform_order_no']) }}",
            "{{ drop_indexes_named(['ofe_order_events']) }}",
        ],
    )
}}

{#- Warehouse and carrier events that move an order, each mapped to the unified status it
    implies (fulfillment_event_map seed). Carrier events without an order key find their order
    through the tracking number; one whose waybill is not on any order yet is kept with a null
    order key and resolved by a later build, when an order with that tracking number arrives.
    Stored: its raw tables are the largest, and every status model reads it per order. -#}

with wms_events as (
    select * from {{ ref('stg_merchant_systems__wms_events') }}
    {% if is_incremental() %}
    where {{ unseen_raw_rows() }}
    {% endif %}
),

carrier_tracks as (
    select
        event_id,
        tracking_no,
        carrier,
        channel,
        platform_order_no,
        event_type,
        description,
        event_at
    from {{ ref('stg_merchant_systems__carrier_tracks') }}
    {% if is_incremental() %}
    where {{ unseen_raw_rows() }}
    {% endif %}
),

orders as (
    select channel, platform_order_no, tracking_no
    from {{ ref('int_orders') }}
    where tracking_no is not null
),

event_map as (
    select * from {{ ref('fulfillment_event_map') }}
),

{% if is_incremental() %}
-- waybills stored without an order whose order has arrived since
unresolved as (
    select
        substr(fulfillment_event_key, length('carrier:') + 1) as event_id,
        tracking_no,
        carrier,
        null::text as channel,
        null::text as platform_order_no,
        event_type,
        description,
        event_at
    from {{ this }}
    where platform_order_no is null
        and tracking_no in (
            select tracking_no
            from {{ ref('int_orders') }}
            where {{ unseen_by_last_build() }}
        )
),
{% endif %}

-- read twice below: scanned twice, not stored
tracks as not materialized (
    select * from carrier_tracks
    {% if is_incremental() %}
    union all
    select * from unresolved
    {% endif %}
),

-- the orders of the waybills whose events name no order: most events name theirs, and the
-- join below then hashes these few orders instead of every order with a waybill (with those,
-- every event of a backfill went through the join's batches on disk)
waybill_orders as (
    select channel, platform_order_no, tracking_no
    from orders
    where tracking_no in (select tracking_no from tracks where platform_order_no is null)
),

wms as (
    select
        'wms:' || coalesce(
            event_id,
            {{ opaque_key("concat_ws('|', channel, platform_order_no, event_type, event_at::text)") }}
        ) as fulfillment_event_key,
        channel,
        platform_order_no,
        'wms' as origin,
        event_type,
        event_at,
        warehouse_id,
        null::text as carrier,
        null::text as tracking_no,
        detail as description
    from wms_events
    where platform_order_no is not null
),

carrier as (
    select
        'carrier:' || coalesce(
            tracks.event_id,
            {{ opaque_key("concat_ws('|', tracks.tracking_no, tracks.event_type, tracks.event_at::text)") }}
        ) as fulfillment_event_key,
        coalesce(tracks.channel, orders.channel) as channel,
        coalesce(tracks.platform_order_no, orders.platform_order_no) as platform_order_no,
        'carrier' as origin,
        tracks.event_type,
        tracks.event_at,
        null::text as warehouse_id,
        tracks.carrier,
        tracks.tracking_no,
        tracks.description
    from tracks
    left join waybill_orders as orders
        on tracks.platform_order_no is null
        and orders.tracking_no = tracks.tracking_no
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
    where unioned.event_at is not null
),

final as (
    select
        *,
        {{ build_columns() }}
    from mapped
)

select * from final
