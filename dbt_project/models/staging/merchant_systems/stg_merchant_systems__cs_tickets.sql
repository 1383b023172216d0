{#- Customer-service tickets (sandbox/ops_records.py CsTicket). The free text may hold PII:
    masked in marts. -#}

with source as (
    {{ select_optional_raw('cs_tickets') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'ticket_id'") }} as ticket_id,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,
        {{ nonblank("payload ->> 'buyer_id'") }} as buyer_id,

        ---------- ticket
        {{ nonblank("payload ->> 'topic'") }} as topic,
        {{ nonblank("payload ->> 'text'") }} as ticket_text,
        lower({{ nonblank("payload ->> 'status'") }}) as ticket_status,
        lower({{ nonblank("payload ->> 'priority'") }}) as priority,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'opened_at'") }} as opened_at,
        {{ beijing_ts("payload ->> 'updated_at'") }} as updated_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
