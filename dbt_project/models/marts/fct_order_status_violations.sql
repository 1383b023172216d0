{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='delete+insert',
        indexes=[{'columns': ['channel', 'platform_order_no']}] + build_indexes(),
        post_hook="{{ delete_orders_without_rows([ref('fct_order_status_transitions')]) }}",
    )
}}

{# Status changes the state machine refused: what was attempted, from which status, by which
   source, and why it was not applied. #}

with transitions as (
    {% if is_incremental() %}
    {{ rows_of_changed_orders(
        ref('fct_order_status_transitions'), changed_rows(ref('fct_order_status_transitions'))
    ) }}
    {% else %}
    select * from {{ ref('fct_order_status_transitions') }}
    {% endif %}
),

final as (
    select
        channel,
        platform_order_no,
        seq,
        from_status,
        attempted_status,
        origin,
        attempted_at,
        violation_reason as reason,
        {{ build_columns() }}
    from transitions
    where outcome = 'forbidden'
)

select * from final
