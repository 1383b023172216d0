{#- a risk pass reads its candidates' events (cart actions, devices, IPs) by buyer and time:
    a buyer's events lie on a page each, so the key alone cost 65,923 pages for 9,992 buyers at
    1,000,000 orders; with what the pass reads in the index, 9,816. It replaces the plain
    (buyer_id, event_at) index. -#}
{%- set buyer_events = "(buyer_id, event_at) include (action, ip, device)" -%}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['event_id'], 'unique': True},
            {'columns': ['device', 'buyer_id', 'event_at']},
            {'columns': ['ip', 'buyer_id', 'event_at']},
        ] + build_indexes(),
        ensured_indexes={'ibe_buyer_events': buyer_events},
        post_hook=[
            "{{ ensure_indexes() }}",
            "{{ drop_superseded_index(['buyer_id', 'event_at']) }}",
        ],
    )
}}

{#- The storefront behaviour log, parsed once and stored. The log is the largest raw table
    (5.4 M events at 1,000,000 orders) and every risk pass reads its candidates' cart events
    and who else used their devices and IPs: read through the staging view, each pass parsed
    the JSON of every event in its time span again (most of a risk pass at that size). Indexed
    by buyer and time (a buyer's cart events and identifiers), and by device and by IP with the
    buyer next (the first few buyers of an identifier, without reading all its events). -#}

with behaviour as (
    select * from {{ ref('stg_merchant_systems__behaviour_events') }}
    where event_id is not null
    {% if is_incremental() %}
        and {{ unseen_raw_rows() }}
    {% endif %}
),

final as (
    select
        event_id,
        buyer_id,
        channel,
        sku,
        platform_order_no,
        action,
        ip,
        device,
        event_at,
        loaded_at,
        {{ build_columns() }}
    from behaviour
)

select * from final
