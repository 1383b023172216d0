{#- The latest warehouse/carrier status of each order (ties broken by lifecycle progress). -#}

with events as (
    select * from {{ ref('int_order_fulfilment_events') }}
),

statuses as (
    select * from {{ ref('unified_statuses') }}
),

latest as (
    select distinct on (events.channel, events.platform_order_no)
        events.channel,
        events.platform_order_no,
        events.unified_status as fulfilment_status,
        events.event_at as fulfilment_status_at,
        events.origin as fulfilment_origin
    from events
    inner join statuses using (unified_status)
    order by
        events.channel,
        events.platform_order_no,
        events.event_at desc,
        statuses.progress_rank desc
)

select * from latest
