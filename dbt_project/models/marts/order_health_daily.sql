{#- The Order Health Index (OHI, 0-100) per Beijing day and channel, from five sub-scores
    (formulas: README "Order Health Index"; settings: the var `order_health_index`, a copy of
    config/health_index.yaml). Timeliness counts the platform changes of the day (the order's
    modified time); the other four count the orders created that day. A sub-score with nothing
    to measure is null and the OHI is the weighted mean of the others. A plain table: a few
    aggregates over order_health_checks (one narrow row per order, incremental: the checks of
    each order), rebuilt whole each run; stuck is counted here, to the data clock. Read whole
    from int_orders, fct_orders, the status history, the CS tickets, the WMS events and the
    decisions instead, it cost ~7 s of CPU per cycle at 1,000,000 orders. -#}

{%- set settings = var('order_health_index') -%}
{%- set weights = settings['weights'] -%}
{%- set timeliness = settings['timeliness'] -%}
{%- set control = settings['controllability'] -%}

{%- set stuck_statuses = "'" ~ control['stuck_statuses'] | join("', '") ~ "'" %}

-- the orders' checks (order_health_checks): the columns the scores read. Not materialised:
-- each aggregate below then scans the table itself, and PostgreSQL can share the scans and
-- aggregates with parallel workers (a CTE read twice is materialised once, in one process:
-- 4.1 s against 2.7 s at 1,000,000 orders on a busy 2-core host, the same 64 rows)
with checks as not materialized (
    select
        channel,
        day,
        change_day,
        modified_at,
        loaded_at,
        fields_expected,
        fields_present,
        is_consistent,
        is_accurate,
        is_manual_review,
        is_held,
        is_escalated,
        current_status,
        current_status_entered_at
    from {{ ref('order_health_checks') }}
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

---------- timeliness: the delay of each order's latest change, on the day of that change

-- a change the platform made before the channel's earliest load still in raw was history
-- loaded by the first sync (a backfill, or a demo world published at once), not a late one:
-- its delay counts from that first load
first_loads as (
    select channel, min(loaded_at) as first_loaded_at
    from checks
    group by channel
),

sync_delays as (
    select
        checks.channel,
        checks.change_day as day,
        sync_windows.target_minutes,
        sync_windows.limit_minutes,
        greatest(
            extract(epoch from checks.loaded_at
                - greatest(checks.modified_at, first_loads.first_loaded_at)) / 60,
            0
        ) as delay_minutes
    from checks
    inner join first_loads using (channel)
    inner join sync_windows using (channel)
    where checks.change_day is not null
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

---------- controllability: stuck orders (the other reasons are order_health_checks')

-- stuck is counted to the newest modified time in the warehouse, not the wall clock: a
-- rebuild over the same data gives the same answer (never past now: one order stamped in
-- the future must not make every other one stuck)
data_clock as (
    select least(max(modified_at), now()) as as_of
    from checks
),

---------- per order: the checks of order_health_checks, and stuck

order_checks as (
    select
        checks.channel,
        checks.day,
        checks.fields_expected,
        checks.fields_present,
        checks.is_consistent,
        checks.is_accurate,
        checks.is_manual_review,
        checks.is_held,
        coalesce(
            checks.current_status in ({{ stuck_statuses }})
            and checks.current_status_entered_at
                < data_clock.as_of - interval '{{ control['stuck_hours'] }} hours',
            false
        ) as is_stuck,
        checks.is_escalated
    from checks
    cross join data_clock
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
