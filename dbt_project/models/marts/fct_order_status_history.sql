{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['channel', 'platform_order_no', 'entered_at']}] + build_indexes(),
    )
}}

{# One row per status an order was in, with the time it entered and left it (null while it is
   still there). Forbidden transitions are not statuses the order was in: they are in
   fct_order_status_violations. #}

with transitions as (
    select * from {{ ref('fct_order_status_transitions') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (
        {{ changed_rows(ref('fct_order_status_transitions')) }}
    )
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
