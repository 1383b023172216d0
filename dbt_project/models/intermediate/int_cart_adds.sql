{{
    config(
        materialized='incremental',
        unique_key='cart_event_key',
        incremental_strategy='merge',
        indexes=[{'columns': ['cart_event_key'], 'unique': True}] + build_indexes(),
    )
}}

{#- The storefront's cart-add events, kept apart for the order funnel, which counts cart
    buyers per channel and day on every read. -#}

with behaviour as (
    select * from {{ ref('int_behaviour_events') }}
    where action = 'cart_add'
    {% if is_incremental() %}
        and {{ unseen_by_last_build() }}
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
