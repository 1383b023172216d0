{#- order_health_checks reads every order's current status (order_health_daily counts the
    orders stuck in it): an index-only read of the current statuses instead of a scan of every
    status of every order (1,800 pages instead of 106,000 at 1,000,000 orders: half of what
    the health model read when it was rebuilt whole each run) -#}
{%- set current_status = "(unified_status, entered_at) include (channel, platform_order_no)"
    ~ " where is_current" -%}
{#- an incremental build deletes the statuses of each changed order by the order's key, one
    probe per order into this index: on the key alone B-tree deduplication keeps one entry per
    order (10,912 pages at 1,000,000 orders against 34,603 with `entered_at` after the key),
    so the probes of a 10,000-order cycle land on fewer pages, more of them in memory. It
    replaces the (channel, platform_order_no, entered_at) index of earlier builds. -#}
{%- set order_statuses = "(channel, platform_order_no)" -%}
{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='delete+insert',
        indexes=build_indexes(),
        ensured_indexes={'osh_current_status': current_status, 'osh_order': order_statuses},
        post_hook=[
            "{{ ensure_indexes() }}",
            "{{ drop_superseded_index(['channel', 'platform_order_no', 'entered_at']) }}",
        ],
    )
}}

{# One row per status an order was in, with the time it entered and left it (null while it is
   still there). Forbidden transitions are not statuses the order was in: they are in
   fct_order_status_violations. #}

with transitions as (
    {% if is_incremental() %}
    {{ rows_of_changed_orders(
        ref('fct_order_status_transitions'), changed_rows(ref('fct_order_status_transitions'))
    ) }}
    {% else %}
    select * from {{ ref('fct_order_status_transitions') }}
    {% endif %}
),

entered as (
    select *
    from transitions
    where outcome = 'entered'
),

final as (
    select
        channel,
        platform_order_no,
        row_number() over (
            partition by channel, platform_order_no order by seq
        )::integer as status_seq,
        attempted_status as unified_status,
        from_status as previous_status,
        origin,
        attempted_at as entered_at,
        lead(attempted_at) over (partition by channel, platform_order_no order by seq) as left_at,
        lead(attempted_at) over (partition by channel, platform_order_no order by seq) is null
            as is_current,
        round(extract(epoch from (
            coalesce(
                lead(attempted_at) over (partition by channel, platform_order_no order by seq),
                now()
            ) - attempted_at
        )) / 3600.0, 2) as hours_in_status,
        {{ build_columns() }}
    from entered
)

select * from final
