{#- The Order Health Index (OHI, 0-100) per Beijing day and channel, from five sub-scores
    (formulas: README "Order Health Index"; settings: the var `order_health_index`, a copy of
    config/health_index.yaml). Timeliness counts the platform changes of the day (the order's
    modified time); the other four count the orders created that day. A sub-score with nothing
    to measure is null and the OHI is the weighted mean of the others. A plain table: a few
    aggregates over tables already built, rebuilt whole each run. -#}

{%- set settings = var('order_health_index') -%}
{%- set weights = settings['weights'] -%}
{%- set timeliness = settings['timeliness'] -%}
{%- set completeness = settings['completeness'] -%}
{%- set control = settings['controllability'] -%}

{%- set stuck_statuses = "'" ~ control['stuck_statuses'] | join("', '") ~ "'" -%}
{%- set escalated_priorities = "'" ~ control['escalated_priorities'] | join("', '") ~ "'" %}

with parsed_orders as (
    select * from {{ ref('int_orders') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

current_statuses as (
    select * from {{ ref('fct_order_status_history') }}
    where is_current
),

cs_tickets as (
    select * from {{ ref('fct_cs_tickets') }}
),

warehouse_ships as (
    select * from {{ ref('int_order_fulfillment_events') }}
    where origin = 'wms' and event_type = 'ship' and platform_order_no is not null
),

routing_decisions as (
    select * from {{ source('ops', 'routing_decisions') }}
),

review_queue as (
    select * from {{ source('ops', 'review_queue') }}
),

statuses as (
    select * from {{ ref('unified_statuses') }}
),

sync_windows as (
    select channel, target_minutes, limit_minutes
    from (
        values
        {%- for channel in var('order_channels') %}
        {%- set window = timeliness['channels'].get(channel, timeliness) %}
        ('{{ channel }}', {{ window['target_minutes'] }}::numeric,
            {{ window['limit_minutes'] }}::numeric){% if not loop.last %},{% endif %}
        {%- endfor %}
    ) as windows (channel, target_minutes, limit_minutes)
),

---------- one narrow pass over the parsed orders: what every sub-score needs of them

order_facts as (
    select
        channel,
        platform_order_no,
        {{ local_date('coalesce(created_at, modified_at)') }} as day,
        {{ local_date('modified_at') }} as change_day,
        modified_at,
        loaded_at,
        {{ completeness['required_fields'] | length }}
        {%- if completeness['required_when_paid'] %}
            + case when is_paid then {{ completeness['required_when_paid'] | length }} else 0 end
        {%- endif %} as fields_expected,
        {%- for field in completeness['required_fields'] %}
        ({{ field }} is not null and trim({{ field }}::text) <> '')::int
        {%- if not loop.last %} +{% endif %}
        {%- endfor %}
        {%- if completeness['required_when_paid'] %}
        + case when is_paid then
            {%- for field in completeness['required_when_paid'] %}
            ({{ field }} is not null and trim({{ field }}::text) <> '')::int
            {%- if not loop.last %} +{% endif %}
            {%- endfor %}
        else 0 end
        {%- endif %} as fields_present,
        is_status_mapped,
        platform_unified_status
    from parsed_orders
),

---------- timeliness: the delay of each order's latest change, on the day of that change

-- a change the platform made before the channel's earliest load still in raw was history
-- loaded by the first sync (a backfill, or a demo world published at once), not a late one:
-- its delay counts from that first load
first_loads as (
    select channel, min(loaded_at) as first_loaded_at
    from order_facts
    group by channel
),

sync_delays as (
    select
        order_facts.channel,
        order_facts.change_day as day,
        sync_windows.target_minutes,
        sync_windows.limit_minutes,
        greatest(
            extract(epoch from order_facts.loaded_at
                - greatest(order_facts.modified_at, first_loads.first_loaded_at)) / 60,
            0
        ) as delay_minutes
    from order_facts
    inner join first_loads using (channel)
    inner join sync_windows using (channel)
    where order_facts.change_day is not null
),

timeliness_daily as (
    select
        channel,
        day,
        count(*) as changes,
        count(*) filter (where delay_minutes > target_minutes) as late_changes,
        avg(delay_minutes) as avg_sync_delay_minutes,
        -- full credit up to the target, none from the limit, linear in between
        100 * avg(
            least(greatest((limit_minutes - delay_minutes) / (limit_minutes - target_minutes), 0), 1)
        ) as timeliness
    from sync_delays
    group by channel, day
),

---------- accuracy: routed orders re-routed, refused or shipped from elsewhere

routed_orders as (
    select
        channel,
        platform_order_no,
        bool_or(rule = 'circuit_breaker') as is_rerouted,
        bool_or(coalesce(wms_status, '') like 'rejected%') as is_refused,
        array_agg(distinct warehouse_id) as decided_warehouses
    from routing_decisions
    where decision in ('ship', 'split')
    group by channel, platform_order_no
),

shipped_elsewhere as (
    select distinct routed_orders.channel, routed_orders.platform_order_no
    from routed_orders
    inner join warehouse_ships using (channel, platform_order_no)
    where warehouse_ships.warehouse_id is not null
        and warehouse_ships.warehouse_id <> all(routed_orders.decided_warehouses)
),

routing_checks as (
    select
        routed_orders.channel,
        routed_orders.platform_order_no,
        not (
            routed_orders.is_rerouted
            or routed_orders.is_refused
            or shipped_elsewhere.platform_order_no is not null
        ) as is_accurate
    from routed_orders
    left join shipped_elsewhere using (channel, platform_order_no)
),

---------- controllability: orders that needed a person

manual_reviews as (
    select distinct channel, platform_order_no
    from routing_decisions
    where decision = 'manual_review'
),

holds as (
    select distinct channel, platform_order_no
    from review_queue
),

-- stuck is counted to the newest modified time in the warehouse, not the wall clock: a
-- rebuild over the same data gives the same answer (never past now: one order stamped in
-- the future must not make every other one stuck)
data_clock as (
    select least(max(modified_at), now()) as as_of
    from order_facts
),

stuck as (
    select distinct current_statuses.channel, current_statuses.platform_order_no
    from current_statuses
    cross join data_clock
    where current_statuses.unified_status in ({{ stuck_statuses }})
        and current_statuses.entered_at
            < data_clock.as_of - interval '{{ control['stuck_hours'] }} hours'
),

escalated as (
    select distinct channel, platform_order_no
    from cs_tickets
    where platform_order_no is not null
    {%- if control['escalated_priorities'] %}
        and priority in ({{ escalated_priorities }})
    {%- else %}
        and false
    {%- endif %}
),

---------- per order: the checks of completeness, consistency, accuracy, controllability

order_checks as (
    select
        order_facts.channel,
        order_facts.day,
        order_facts.fields_expected,
        order_facts.fields_present,
        case
            -- a platform status word OrderPulse cannot read says nothing
            when not order_facts.is_status_mapped then false
            -- the platform decides every status but paid_pending_review
            when order_facts.platform_unified_status <> 'paid_pending_review'
                and orders.unified_status <> order_facts.platform_unified_status then false
            -- out of the warehouse while the platform or the unified status says not paid,
            -- not shipped, or cancelled before shipping
            when fulfillment.progress_rank >= 7
                and (order_facts.platform_unified_status
                    in ('awaiting_payment', 'paid_pending_review', 'closed')
                    or orders.unified_status = 'closed') then false
            -- the platform says shipped while the warehouse still has it
            when order_facts.platform_unified_status in ('in_transit', 'delivered')
                and orders.fulfillment_status in ('pending_allocation', 'allocated', 'picking')
                then false
            else true
        end as is_consistent,
        routing_checks.is_accurate,
        manual_reviews.platform_order_no is not null as is_manual_review,
        holds.platform_order_no is not null as is_held,
        stuck.platform_order_no is not null as is_stuck,
        escalated.platform_order_no is not null as is_escalated
    from order_facts
    left join orders using (channel, platform_order_no)
    left join statuses as fulfillment
        on fulfillment.unified_status = orders.fulfillment_status
    left join routing_checks using (channel, platform_order_no)
    left join manual_reviews using (channel, platform_order_no)
    left join holds using (channel, platform_order_no)
    left join stuck using (channel, platform_order_no)
    left join escalated using (channel, platform_order_no)
),

orders_daily as (
    select
        channel,
        day,
        count(*) as orders,
        sum(fields_expected) as fields_expected,
        sum(fields_expected - fields_present) as fields_missing,
        count(*) filter (where not is_consistent) as inconsistent_orders,
        count(is_accurate) as routed_orders,
        count(*) filter (where not is_accurate) as misrouted_orders,
        count(*) filter (
            where is_manual_review or is_held or is_stuck or is_escalated
        ) as orders_needing_person,
        count(*) filter (where is_manual_review) as manual_review_orders,
        count(*) filter (where is_held) as held_orders,
        count(*) filter (where is_stuck) as stuck_orders,
        count(*) filter (where is_escalated) as escalated_orders
    from order_checks
    group by channel, day
),

scores as (
    select
        coalesce(orders_daily.day, timeliness_daily.day) as day,
        coalesce(orders_daily.channel, timeliness_daily.channel) as channel,
        timeliness_daily.timeliness,
        100 * (1 - orders_daily.fields_missing::numeric / nullif(orders_daily.fields_expected, 0))
            as completeness,
        100 * (1 - orders_daily.inconsistent_orders::numeric / nullif(orders_daily.orders, 0))
            as consistency,
        100 * (1 - orders_daily.misrouted_orders::numeric / nullif(orders_daily.routed_orders, 0))
            as accuracy,
        100 * (1 - orders_daily.orders_needing_person::numeric / nullif(orders_daily.orders, 0))
            as controllability,
        coalesce(orders_daily.orders, 0) as orders,
        coalesce(timeliness_daily.changes, 0) as changes,
        coalesce(timeliness_daily.late_changes, 0) as late_changes,
        timeliness_daily.avg_sync_delay_minutes,
        coalesce(orders_daily.fields_expected, 0) as fields_expected,
        coalesce(orders_daily.fields_missing, 0) as fields_missing,
        coalesce(orders_daily.inconsistent_orders, 0) as inconsistent_orders,
        coalesce(orders_daily.routed_orders, 0) as routed_orders,
        coalesce(orders_daily.misrouted_orders, 0) as misrouted_orders,
        coalesce(orders_daily.orders_needing_person, 0) as orders_needing_person,
        coalesce(orders_daily.manual_review_orders, 0) as manual_review_orders,
        coalesce(orders_daily.held_orders, 0) as held_orders,
        coalesce(orders_daily.stuck_orders, 0) as stuck_orders,
        coalesce(orders_daily.escalated_orders, 0) as escalated_orders
    from orders_daily
    full outer join timeliness_daily
        on timeliness_daily.channel = orders_daily.channel
        and timeliness_daily.day = orders_daily.day
),

-- the weighted mean of the sub-scores that have a value (quality/health_index.py ohi())
weighted as (
    select
        *,
        {%- for name, weight in weights.items() %}
        {{ weight }} * coalesce({{ name }}, 0){% if not loop.last %} +{% endif %}
        {%- endfor %} as weighted_sum,
        {%- for name, weight in weights.items() %}
        case when {{ name }} is null then 0 else {{ weight }} end
        {%- if not loop.last %} +{% endif %}
        {%- endfor %} as weight_present
    from scores
),

final as (
    select
        day,
        channel,
        round(weighted_sum / nullif(weight_present, 0), 2)::numeric(5, 2) as ohi,
        round(timeliness, 2)::numeric(5, 2) as timeliness,
        round(completeness, 2)::numeric(5, 2) as completeness,
        round(consistency, 2)::numeric(5, 2) as consistency,
        round(accuracy, 2)::numeric(5, 2) as accuracy,
        round(controllability, 2)::numeric(5, 2) as controllability,
        orders,
        changes,
        late_changes,
        round(avg_sync_delay_minutes, 1)::numeric(12, 1) as avg_sync_delay_minutes,
        fields_expected,
        fields_missing,
        inconsistent_orders,
        routed_orders,
        misrouted_orders,
        orders_needing_person,
        manual_review_orders,
        held_orders,
        stuck_orders,
        escalated_orders
    from weighted
)

select * from final
