{{
    config(
        materialized='incremental',
        unique_key='tracking_no',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['tracking_no'], 'unique': True},
            {'columns': ['channel', 'platform_order_no']},
        ] + build_indexes(),
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
