{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='delete+insert',
    )
}}

{# Status changes the state machine refused: what was attempted, from which status, by which
   source, and why it was not applied. #}

with transitions as (
    select * from {{ ref('fct_order_status_transitions') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (
        select channel, platform_order_no
        from {{ ref('fct_order_status_transitions') }}
        where xmin::text::bigint >= {{ last_built_xid() }}
    )
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
        now() as _built_at,
        {{ built_xid() }} as _built_xid
    from transitions
    where outcome = 'forbidden'
)

select * from final
