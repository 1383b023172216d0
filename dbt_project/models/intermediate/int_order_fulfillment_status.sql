{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='merge',
        indexes=[{'columns': ['channel', 'platform_order_no'], 'unique': True}] + build_indexes(),
    )
}}

{#- The latest warehouse/carrier status of each order (ties broken by lifecycle progress).
    Incremental: recomputed for the orders with events stored since the last build. -#}

with
{% if is_incremental() %}
changed as (
    {{ changed_rows(ref('int_order_fulfillment_events')) }}
        and platform_order_no is not null
),
{% endif %}

events as (
    select * from {{ ref('int_order_fulfillment_events') }}
    where platform_order_no is not null
    {% if is_incremental() %}
        and (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {% endif %}
),

statuses as (
    select * from {{ ref('unified_statuses') }}
),

latest as (
    select distinct on (events.channel, events.platform_order_no)
        events.channel,
        events.platform_order_no,
        events.unified_status as fulfillment_status,
        events.event_at as fulfillment_status_at,
        events.origin as fulfillment_origin
    from events
    inner join statuses using (unified_status)
    order by
        events.channel,
        events.platform_order_no,
        events.event_at desc,
        statuses.progress_rank desc
),

final as (
    select
        *,
        {{ build_columns() }}
    from latest
)

select * from final
