{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['channel', 'platform_order_no'], 'unique': True},
            {'columns': ['tracking_no']},
            {'columns': ['platform_unified_status']},
        ] + build_indexes(),
    )
}}

{# The parsed orders of every source with the platform's own status fold, stored: parsing the
   raw JSON is the expensive step, so it happens once per changed raw row. Clear PII stays in
   this schema (BI cannot read it); marts mask it. The filter on raw_xid is a plain comparison
   so PostgreSQL applies it inside every raw table scan, before any JSON is parsed. The status
   index finds the few orders awaiting allocation (int_orders_awaiting_allocation, read by
   every decision pass and its blocking check): 0.38 -> 0.18 s a read at 1,000,000 orders. #}

with orders as (
    select * from {{ ref('int_order_platform_status') }}
    {% if is_incremental() %}
    where {{ unseen_raw_rows() }}
    {% endif %}
),

final as (
    select
        *,
        {{ build_columns() }}
    from orders
)

select * from final
