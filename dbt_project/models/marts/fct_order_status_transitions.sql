{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='sync',
        sync_row_key=['seq'],
        indexes=[{'columns': ['channel', 'platform_order_no', 'seq'], 'unique': True}] + build_indexes(),
    )
}}

{# Every status an order was told to enter, in time order, run through the state machine of
   the status_transitions seed: an allowed change is applied; evidence of an earlier step of
   the normal flow arriving after a later one (a carrier's "waybill created" after the
   platform's "shipped") is stale and ignored; anything else is forbidden, recorded with its
   reason, and the order stays where it was. Rebuilt per changed order, written by the
   `sync` strategy (macros/incremental_sync.sql): an order keeps the stored rows that come
   again unchanged and gains its new ones; one with a row changed or gone is replaced whole.

   Most orders (96% at 500,000) never meet a stale or forbidden event: each event is allowed
   from, or repeats, the one before, so the state is simply the attempted status and one
   window (lag) gives the machine's result. Only the other orders run the recursive machine,
   one step per event (17 steps at most) over their events held as arrays: over every order
   that was most of the model's time (130 s of a 500,000-order build). #}

-- depends_on: {{ ref('int_order_fulfillment_events') }}

with recursive orders as (
    select
        channel, platform_order_no, platform_unified_status, risk_state, routing_decision,
        created_at, paid_at, shipped_at, delivered_at, closed_at, modified_at, routing_decided_at
    from {{ ref('fct_orders') }}
    {% if is_incremental() %}
    where (channel, platform_order_no) in (
        {{ changed_rows(ref('fct_orders')) }}
        union
        {{ changed_rows(ref('int_order_fulfillment_events')) }}
    )
    {% endif %}
),

fulfillment_events as (
    select events.*
    from {{ ref('int_order_fulfillment_events') }} as events
    inner join orders using (channel, platform_order_no)
),

statuses as (
    select * from {{ ref('unified_statuses') }}
),

transitions as (
    select * from {{ ref('status_transitions') }}
),

-- what each source says happened, and when
platform_events as (
    select channel, platform_order_no, 'awaiting_payment' as unified_status,
           created_at as at, 'platform' as origin
    from orders
    union all
    select channel, platform_order_no, 'paid_pending_review', paid_at, 'platform'
    from orders where paid_at is not null
    union all
    select channel, platform_order_no, 'in_transit', shipped_at, 'platform'
    from orders where shipped_at is not null
    union all
    select channel, platform_order_no, 'delivered', delivered_at, 'platform'
    from orders where delivered_at is not null
    union all
    -- the platform's current status when no timestamp above says when it was entered
    -- (file sources send only created/paid/modified times)
    select channel, platform_order_no, platform_unified_status,
           case when platform_unified_status = 'closed' then coalesce(closed_at, modified_at)
                else modified_at end,
           'platform'
    from orders
    where platform_unified_status in ('closed', 'after_sale')
        or (platform_unified_status = 'in_transit' and shipped_at is null)
        or (platform_unified_status = 'delivered' and delivered_at is null)
),

decision_events as (
    select channel, platform_order_no, 'risk_review' as unified_status,
           paid_at as at, 'risk' as origin
    from orders where risk_state in ('held', 'released', 'intercepted') and paid_at is not null
    union all
    select channel, platform_order_no, 'pending_allocation', paid_at, 'risk'
    from orders where risk_state = 'passed' and paid_at is not null
    union all
    select channel, platform_order_no,
           case when routing_decision = 'manual_review' then 'pending_allocation'
                else 'allocated' end,
           routing_decided_at, 'routing'
    from orders
    where routing_decision is not null and routing_decided_at is not null
        and platform_unified_status = 'paid_pending_review'
    union all
    select channel, platform_order_no, 'closed', modified_at, 'review'
    from orders where risk_state = 'intercepted' and platform_unified_status = 'paid_pending_review'
),

all_events as (
    select * from platform_events
    union all
    select * from decision_events
    union all
    select channel, platform_order_no, unified_status, event_at, origin
    from fulfillment_events
),

numbered as (
    select
        all_events.channel,
        all_events.platform_order_no,
        all_events.unified_status,
        all_events.at,
        all_events.origin,
        (row_number() over order_events)::integer as seq,
        -- the event before, in the same sort (one sort for both)
        lag(all_events.unified_status) over order_events as previous_status
    from all_events
    inner join statuses using (unified_status)
    where all_events.at is not null
    window order_events as (
        partition by all_events.channel, all_events.platform_order_no
        order by all_events.at, statuses.progress_rank, all_events.origin
    )
),

-- each event against the one before it: does it follow on (allowed, or a repeat)? A hashed
-- sub-plan rather than a join keeps the window's sort order, so the second window (does
-- every event of the order follow on?) needs no sort of its own; `in` is null, not false,
-- when the seed has a blank cell, and bool_and would skip it
checked as (
    select
        *,
        bool_and(follows_on) over (partition by channel, platform_order_no) as order_follows_on
    from (
        select
            numbered.*,
            numbered.previous_status is null
                or numbered.previous_status = numbered.unified_status
                or coalesce((numbered.previous_status, numbered.unified_status) in (
                    select from_status, to_status from transitions
                ), false) as follows_on
        from numbered
    ) as events
),

straight as (
    select
        channel,
        platform_order_no,
        seq,
        unified_status as attempted_status,
        previous_status as from_status,
        unified_status as state,
        at,
        origin,
        case
            when previous_status = unified_status then 'repeated'
            else 'entered'
        end as outcome
    from checked
    where order_follows_on
),

-- orders with an event that does not follow on run the machine: their events as arrays in
-- time order, so each step of the recursion reads the next event by position instead of
-- joining (and sorting) every machine event again
machine_orders as (
    select
        channel,
        platform_order_no,
        count(*)::integer as events,
        array_agg(unified_status order by seq) as attempted,
        array_agg(at order by seq) as ats,
        array_agg(origin order by seq) as origins
    from checked
    where not order_follows_on
    group by channel, platform_order_no
),

machine as (
    select
        channel,
        platform_order_no,
        1 as seq,
        attempted[1] as attempted_status,
        null::text as from_status,
        attempted[1] as state,
        ats[1] as at,
        origins[1] as origin,
        'entered' as outcome,
        events,
        attempted,
        ats,
        origins
    from machine_orders

    union all

    select
        machine.channel,
        machine.platform_order_no,
        machine.seq + 1,
        machine.attempted[machine.seq + 1],
        machine.state,
        case
            when allowed.to_status is not null then machine.attempted[machine.seq + 1]
            else machine.state
        end,
        machine.ats[machine.seq + 1],
        machine.origins[machine.seq + 1],
        case
            when machine.attempted[machine.seq + 1] = machine.state then 'repeated'
            when allowed.to_status is not null then 'entered'
            when next_rank.progress_rank < state_rank.progress_rank
                and next_rank.progress_rank between 2 and 10
                and state_rank.progress_rank between 2 and 10
                then 'stale'
            else 'forbidden'
        end,
        machine.events,
        machine.attempted,
        machine.ats,
        machine.origins
    from machine
    left join transitions as allowed
        on allowed.from_status = machine.state
        and allowed.to_status = machine.attempted[machine.seq + 1]
    -- ranks 2..10: the normal flow from paid_pending_review to delivered
    inner join statuses as state_rank on state_rank.unified_status = machine.state
    inner join statuses as next_rank
        on next_rank.unified_status = machine.attempted[machine.seq + 1]
    where machine.seq < machine.events
),

applied as (
    select channel, platform_order_no, seq, attempted_status, from_status, state, at, origin, outcome
    from straight
    union all
    select channel, platform_order_no, seq, attempted_status, from_status, state, at, origin, outcome
    from machine
),

final as (
    select
        applied.channel,
        applied.platform_order_no,
        applied.seq,
        applied.from_status,
        applied.attempted_status,
        applied.state as status_after,
        applied.at as attempted_at,
        applied.origin,
        applied.outcome,
        case
            when applied.outcome <> 'forbidden' then null
            when from_rank.is_terminal
                then applied.from_status || ' is terminal: ' || applied.from_status
                    || ' -> ' || applied.attempted_status || ' not applied'
            when to_rank.progress_rank < from_rank.progress_rank
                then 'moves backwards: ' || applied.from_status || ' -> '
                    || applied.attempted_status || ' not applied'
            else 'not an allowed transition: ' || applied.from_status || ' -> '
                || applied.attempted_status || ' not applied'
        end as violation_reason,
        {{ build_columns() }}
    from applied
    left join statuses as from_rank on from_rank.unified_status = applied.from_status
    left join statuses as to_rank on to_rank.unified_status = applied.attempted_status
)

select * from final
