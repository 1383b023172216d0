{{
    config(
        materialized='incremental',
        unique_key=['channel', 'buyer_id'],
        incremental_strategy='merge',
        indexes=[
            {'columns': ['channel', 'buyer_id'], 'unique': True},
        ] + build_indexes(),
        pre_hook="{{ sequential_reads_in_full_build() }}",
    )
}}

{# One row per buyer of a channel (buyer ids are platform-scoped): order and refund history.
   Incremental: the buyers with an order written since the last build are recomputed from all
   their orders (an index lookup on fct_orders by buyer). #}

with
{% if is_incremental() %}
changed_buyers as (
    select distinct channel, buyer_id
    from {{ ref('fct_orders') }}
    where {{ unseen_by_last_build() }}
        and buyer_id is not null
),
{% endif %}

orders as (
    select * from {{ ref('fct_orders') }}
    where buyer_id is not null
    {% if is_incremental() %}
        and (channel, buyer_id) in (select channel, buyer_id from changed_buyers)
    {% endif %}
),

final as (
    select
        ---------- ids
        channel,
        buyer_id,
        {{ opaque_key("channel || ':' || buyer_id") }} as buyer_key,

        ---------- history
        count(*) as orders,
        count(*) filter (where paid_at is not null) as paid_orders,
        count(*) filter (where after_sale_kind in ('refund', 'return', 'reject')) as refund_orders,
        count(*) filter (where after_sale_kind = 'cancel') as cancelled_orders,
        coalesce(sum(paid_amount) filter (where paid_at is not null), 0) as paid_amount,
        coalesce(sum(discount_amount) filter (where paid_at is not null), 0) as discount_amount,
        count(distinct receiver_key) as distinct_receivers,
        count(distinct province) as distinct_provinces,
        mode() within group (order by province) as main_province,

        ---------- timestamps
        min(created_at) as first_seen_at,
        max(created_at) as last_order_at,

        ---------- build bookkeeping
        {{ build_columns() }}
    from orders
    group by channel, buyer_id
)

select * from final
