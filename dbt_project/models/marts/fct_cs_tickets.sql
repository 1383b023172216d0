{{
    config(
        materialized='incremental',
        unique_key='ticket_id',
        incremental_strategy='merge',
        indexes=[
            {'columns': ['ticket_id'], 'unique': True},
            {'columns': ['channel', 'platform_order_no']},
        ] + build_indexes(),
    )
}}

{# One row per customer-service ticket (the latest version of it); free text masked. #}

with tickets as (
    select distinct on (ticket_id) *
    from {{ ref('stg_merchant_systems__cs_tickets') }}
    where ticket_id is not null
    {% if is_incremental() %}
        and {{ unseen_raw_rows() }}
    {% endif %}
    order by ticket_id, updated_at desc nulls last, loaded_at desc
),

final as (
    select
        ---------- ids
        ticket_id,
        channel,
        platform_order_no,
        {{ spreadsheet_safe(mask_phones_in_text('buyer_id')) }} as buyer_id,

        ---------- ticket
        {{ spreadsheet_safe('topic') }} as topic,
        {{ spreadsheet_safe(mask_phones_in_text('ticket_text')) }} as ticket_text,
        ticket_status,
        priority,
        ticket_status <> 'resolved' as is_open,

        ---------- timestamps
        opened_at,
        updated_at,
        round(extract(epoch from (updated_at - opened_at)) / 3600.0, 2) as hours_to_last_update,

        ---------- build bookkeeping
        {{ build_columns() }}
    from tickets
)

select * from final
