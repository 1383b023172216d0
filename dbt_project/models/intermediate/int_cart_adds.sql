{{
    config(
        materialized='incremental',
        unique_key='cart_event_key',
        incremental_strategy='merge',
        indexes=[{'columns': ['cart_event_key'], 'unique': True}] + build_indexes(),
    )
}}

{#- The storefront's cart-add events, parsed once: the behaviour log is the largest raw table,
    and the order funnel counts cart buyers per channel and day on every read. -#}

with behaviour as (
    select * from {{ ref('stg_merchant_systems__behaviour_events') }}
    where action = 'cart_add'
    {% if is_incremental() %}
        and raw_xid >= {{ last_built_xid() }}
    {% endif %}
),

final as (
    select
        coalesce(
            event_id,
            {{ opaque_key("concat_ws('|', channel, buyer_id, sku, event_at::text)") }}
        ) as cart_event_key,
        channel,
        buyer_id,
        sku,
        event_at,
        {{ build_columns() }}
    from behaviour
    where channel is not null
        and event_at is not null
)

select * from final
