{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['channel', 'platform_order_no'], 'unique': True},
            {'columns': ['channel', 'buyer_id']},
        ] + build_indexes(),
    )
}}

-- depends_on: {{ source('ops', 'routing_decisions') }}, {{ source('ops', 'risk_assessments') }}
-- depends_on: {{ source('ops', 'review_queue') }}, {{ source('ops', 'merge_candidates') }}
-- depends_on: {{ source('ops', 'inventory_locks') }}, {{ ref('int_order_fulfillment_status') }}
-- depends_on: {{ ref('int_orders') }}, {{ ref('stg_enrichment__address_geo') }}
-- depends_on: {{ ref('int_order_status') }}, {{ ref('stg_ops__order_decisions') }}

{# One row per (channel, platform_order_no): the unified order, PII masked. Incremental:
   only orders whose parsed row (int_orders), any decision about them, or their warehouse and
   carrier events changed since the last build. #}

{%- if is_incremental() %}
{%- set changed_orders -%}
    {{ changed_rows(ref('int_orders')) }}
    union
    {{ changed_decision_keys() }}
    union
    {{ changed_rows(ref('int_order_fulfillment_status')) }}
    union
    select channel, platform_order_no
    from {{ ref('stg_enrichment__address_geo') }}
    where raw_xid >= {{ last_built_xid() }}
{%- endset %}
{%- endif %}

with
{% if is_incremental() %}
changed as (
    {{ changed_orders }}
),
{% endif %}

orders as (
    {% if is_incremental() %}
    {{ order_status(keys='changed', key_count=count_of(changed_orders)) }}
    {% else %}
    select * from {{ ref('int_order_status') }}
    {% endif %}
),

final as (
    select
        ---------- ids
        channel,
        platform_order_no,
        shop_id,
        {{ spreadsheet_safe(mask_phones_in_text('buyer_id')) }} as buyer_id,
        source,

        ---------- status
        unified_status,
        status_source,
        platform_unified_status,
        platform_status,
        refund_status,
        case
            when has_cancel then 'cancel'
            when has_reject then 'reject'
            when has_return then 'return'
            when has_refund then 'refund'
        end as after_sale_kind,
        has_ship as is_shipped,

        ---------- amounts (numeric yuan)
        goods_value,
        platform_discount,
        shop_discount,
        discount_amount,
        freight,
        paid_amount,
        currency,

        ---------- receiver (masked)
        {{ spreadsheet_safe(mask_name('receiver_name')) }} as receiver_name,
        {{ mask_phone('receiver_phone') }} as receiver_phone,
        {{ spreadsheet_safe(mask_address('receiver_address')) }} as receiver_address,
        {{ opaque_key(
            "coalesce(regexp_replace(receiver_phone, '[^0-9]', '', 'g'), '')
            || '|' || coalesce(province, '') || coalesce(city, '') || coalesce(district, '')
            || coalesce(regexp_replace(receiver_address, '\\s', '', 'g'), '')"
        ) }} as receiver_key,
        {{ spreadsheet_safe('province') }} as province,
        {{ spreadsheet_safe('city') }} as city,
        {{ spreadsheet_safe('district') }} as district,
        {{ spreadsheet_safe('country') }} as country,
        adcode,
        latitude,
        longitude,
        is_address_parsed,
        (country is not null and upper(country) not in ('CN', 'CHN', '中国')) as is_cross_border,
        {{ spreadsheet_safe('hs_code') }} as hs_code,
        declared_value,

        ---------- notes and logistics
        {{ spreadsheet_safe(mask_phones_in_text('buyer_note')) }} as buyer_note,
        {{ spreadsheet_safe(mask_phones_in_text('seller_note')) }} as seller_note,
        {{ spreadsheet_safe('carrier') }} as carrier,
        {{ spreadsheet_safe('tracking_no') }} as tracking_no,

        ---------- decisions
        risk_state,
        risk_score,
        {{ mask_phones_in_text('risk_signals') }} as risk_signals,
        review_decision,
        review_hold_until,
        routing_decision,
        routing_warehouse_id,
        routing_carrier,
        routing_rule,
        routing_score,
        {{ mask_phones_in_text('routing_inputs') }} as routing_inputs,
        routing_decided_at,
        fulfillment_status,
        fulfillment_status_at,
        merge_group_id,

        ---------- timestamps
        created_at,
        paid_at,
        shipped_at,
        delivered_at,
        closed_at,
        modified_at,
        loaded_at,

        ---------- build bookkeeping
        {{ build_columns() }}
    from orders
)

select * from final
