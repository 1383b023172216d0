{{
    config(
        materialized='incremental',
        unique_key='track_event_key',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['track_event_key'], 'unique': True},
            {'columns': ['channel', 'platform_order_no']},
        ] + build_indexes(),
    )
}}

{# One row per carrier tracking event, with the unified status it implies and the order's
   promised delivery time. Descriptions are masked (couriers' phone numbers). #}

with tracks as (
    select * from {{ ref('stg_merchant_systems__carrier_tracks') }}
    {% if is_incremental() %}
    where {{ unseen_raw_rows() }}
    {% endif %}
),

shipments as (
    select distinct on (channel, platform_order_no)
        channel, platform_order_no, shipped_at, promised_at
    from {{ ref('int_carrier_shipments') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (select channel, platform_order_no from tracks)
    {% endif %}
    order by channel, platform_order_no, loaded_at desc
),

event_map as (
    select * from {{ ref('fulfillment_event_map') }}
    where origin = 'carrier'
),

final as (
    select
        ---------- ids
        coalesce(
            tracks.event_id,
            {{ opaque_key("concat_ws('|', tracks.tracking_no, tracks.event_type, tracks.event_at::text)") }}
        ) as track_event_key,
        tracks.channel,
        tracks.platform_order_no,
        {{ spreadsheet_safe('tracks.carrier') }} as carrier,
        {{ spreadsheet_safe('tracks.tracking_no') }} as tracking_no,

        ---------- event
        tracks.event_type,
        event_map.unified_status,
        {{ spreadsheet_safe('tracks.location') }} as location,
        {{ spreadsheet_safe(mask_phones_in_text('tracks.description')) }} as description,

        ---------- timestamps
        tracks.event_at,
        shipments.shipped_at,
        shipments.promised_at,
        (tracks.event_type = 'delivered' and tracks.event_at > shipments.promised_at)
            as is_late_delivery,

        ---------- build bookkeeping
        {{ build_columns() }}
    from tracks
    left join shipments using (channel, platform_order_no)
    left join event_map on event_map.event_type = tracks.event_type
    where tracks.event_at is not null
)

select * from final
