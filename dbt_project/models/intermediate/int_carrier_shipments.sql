{#- routing's breaker walks each warehouse's newest shipments until one did not fail
    (fulfillment/routing_store.py `_HEALTH`): in this order, with the status in the index -#}
{%- set latest_by_warehouse = "(warehouse_id, shipped_at desc nulls last, tracking_no desc)"
    ~ " include (last_track_status) where warehouse_id is not null" -%}
{{
    config(
        materialized='incremental',
        unique_key='tracking_no',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['tracking_no'], 'unique': True},
            {'columns': ['channel', 'platform_order_no']},
        ] + build_indexes(),
        ensured_indexes={'ics_latest_by_warehouse': latest_by_warehouse},
        post_hook=["{{ ensure_indexes() }}"],
    )
}}

{#- The carriers' shipments, parsed once and stored. Every routing pass reads all of them (each
    warehouse's run of failed pickups, the lanes' delivery times) and every build of the
    logistics tracks joins them: through the staging view each read parsed every shipment's
    JSON and Beijing times again. -#}

with shipments as (
    select * from {{ ref('stg_merchant_systems__carrier_shipments') }}
    where tracking_no is not null
    {% if is_incremental() %}
        and {{ unseen_raw_rows() }}
    {% endif %}
),

final as (
    select
        tracking_no,
        channel,
        platform_order_no,
        warehouse_id,
        carrier,
        last_track_status,
        shipped_at,
        promised_at,
        delivered_at,
        updated_at,
        loaded_at,
        {{ build_columns() }}
    from shipments
)

select * from final
