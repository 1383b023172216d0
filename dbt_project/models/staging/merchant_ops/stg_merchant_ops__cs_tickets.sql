with source as (
    {{ select_optional_raw('cs_tickets') }}
),

renamed as (
    select
        ---------- ids
        {{ nonblank("payload ->> 'ticket_id'") }} as ticket_id,
        {{ nonblank("payload ->> 'channel'") }} as channel,
        {{ nonblank("payload ->> 'platform_order_no'") }} as platform_order_no,

        ---------- ticket
        {{ nonblank("payload ->> 'topic'") }} as topic,
        {{ nonblank("payload ->> 'status'") }} as ticket_status,
        {{ to_yuan("payload ->> 'compensation'") }} as compensation,

        ---------- timestamps
        {{ beijing_ts("payload ->> 'opened_at'") }} as opened_at,
        {{ beijing_ts("payload ->> 'closed_at'") }} as closed_at,

        loaded_at,
        raw_xid
    from source
)

select * from renamed
