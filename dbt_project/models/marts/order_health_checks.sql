{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['channel', 'platform_order_no'], 'unique': True}] + build_indexes(),
    )
}}

-- depends_on: {{ source('ops', 'routing_decisions') }}, {{ source('ops', 'risk_assessments') }}
-- depends_on: {{ source('ops', 'review_queue') }}, {{ source('ops', 'merge_candidates') }}
-- depends_on: {{ source('ops', 'inventory_locks') }}

{#- One row per order (every row of int_orders): what order_health_daily needs of it, the
    Order Health Index's checks of completeness, consistency, accuracy and controllability.
    It exists because the daily model, rebuilt whole from int_orders, fct_orders, the status
    history, the CS tickets, the WMS events and the decisions, cost ~7 s of CPU per
    incremental cycle at 1,000,000 orders (114,000 pages read, 31,000 temporary blocks) when
    ~10,000 orders had changed. Incremental: only the orders whose parsed row, order, status
    history, CS tickets, warehouse or carrier events or decisions changed since the last build
    are checked again. The checks of a row depend on the settings of completeness and on the
    escalated priorities (`checks_version`, their md5): when operations edit those, the next
    build checks every order again. Stuck is left to the daily model (the order's current
    status and since when): it is counted to the data clock, which moves for every order. A
    change of the unified_statuses seed needs a --full-refresh. -#}

{%- set settings = var('order_health_index') -%}
{%- set completeness = settings['completeness'] -%}
{%- set control = settings['controllability'] -%}
{%- set escalated_priorities = "'" ~ control['escalated_priorities'] | join("', '") ~ "'" -%}
{%- set checks_version = local_md5(tojson({
    'completeness': completeness,
    'escalated_priorities': control['escalated_priorities'],
}, sort_keys=True)) -%}

{#- an incremental build checks the changed orders only while the stored checks were made with
    the same settings -#}
{%- set only_changed = false -%}
{%- set changed_keys = none -%}
{%- set changed_count = none -%}
{%- if execute and is_incremental() -%}
    {%- set stored = run_query('select checks_version from ' ~ this ~ ' limit 1') -%}
    {%- set only_changed = stored.rows | length > 0 and stored.rows[0][0] == checks_version -%}
{%- endif -%}

{%- if only_changed %}
{%- set changed_orders -%}
    {{ changed_rows(ref('int_orders')) }}
    union
    {{ changed_rows(ref('fct_orders')) }}
    union
    {{ changed_rows(ref('fct_order_status_history')) }}
    union
    {{ changed_rows(ref('fct_cs_tickets')) }}
        and platform_order_no is not null
    union
    {{ changed_rows(ref('int_order_fulfillment_events')) }}
        and platform_order_no is not null
    union
    {{ changed_decision_keys() }}
{%- endset %}
{#- counted once here for every table read by order below -#}
{%- set changed_count = run_query(
    'select count(*) from (' ~ changed_orders ~ ') as keys').rows[0][0] | int -%}
{%- set changed_keys = 'select channel, platform_order_no from changed' -%}
{%- endif %}

with
{%- if only_changed %}
changed as (
    {{ changed_orders }}
),
{%- endif %}

parsed_orders as (
    {{ rows_of_orders(ref('int_orders'), changed_keys, changed_count) | indent(4) }}
),

orders as (
    {{ rows_of_orders(
        ref('fct_orders'), changed_keys, changed_count,
        columns='channel, platform_order_no, unified_status, fulfillment_status'
    ) | indent(4) }}
),

current_statuses as (
    {{ rows_of_orders(
        ref('fct_order_status_history'), changed_keys, changed_count,
        columns='channel, platform_order_no, unified_status, entered_at', where='is_current'
    ) | indent(4) }}
),

cs_tickets as (
    {{ rows_of_orders(
        ref('fct_cs_tickets'), changed_keys, changed_count,
        columns='channel, platform_order_no, priority', where='platform_order_no is not null'
    ) | indent(4) }}
),

-- the WMS's ship events of the changed orders, from `ofe_events_of_order` alone (an order's
-- events lie on as many heap pages as it has events: a page each at 1,000,000 orders)
warehouse_ships as (
    {{ rows_of_orders(
        ref('int_order_fulfillment_events'), changed_keys, changed_count,
        columns='channel, platform_order_no, warehouse_id',
        where="origin = 'wms' and event_type = 'ship' and platform_order_no is not null"
    ) | indent(4) }}
),

routing_decisions as (
    select channel, platform_order_no, decision, rule, wms_status, warehouse_id
    from {{ source('ops', 'routing_decisions') }}
    {%- if only_changed %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {%- endif %}
),

review_queue as (
    select channel, platform_order_no
    from {{ source('ops', 'review_queue') }}
    {%- if only_changed %}
    where (channel, platform_order_no) in (select channel, platform_order_no from changed)
    {%- endif %}
),

statuses as (
    select * from {{ ref('unified_statuses') }}
),

---------- one narrow pass over the parsed orders: the days, times and fields of each

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

---------- controllability: orders that needed a person (stuck: in order_health_daily)

manual_reviews as (
    select distinct channel, platform_order_no
    from routing_decisions
    where decision = 'manual_review'
),

holds as (
    select distinct channel, platform_order_no
    from review_queue
),

escalated as (
    select distinct channel, platform_order_no
    from cs_tickets
    {%- if control['escalated_priorities'] %}
    where priority in ({{ escalated_priorities }})
    {%- else %}
    where false
    {%- endif %}
),

---------- per order: the checks of completeness, consistency, accuracy, controllability

order_checks as (
    select
        order_facts.channel,
        order_facts.platform_order_no,
        order_facts.day,
        order_facts.change_day,
        order_facts.modified_at,
        order_facts.loaded_at,
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
        escalated.platform_order_no is not null as is_escalated,
        current_statuses.unified_status as current_status,
        current_statuses.entered_at as current_status_entered_at
    from order_facts
    left join orders using (channel, platform_order_no)
    left join statuses as fulfillment
        on fulfillment.unified_status = orders.fulfillment_status
    left join routing_checks using (channel, platform_order_no)
    left join manual_reviews using (channel, platform_order_no)
    left join holds using (channel, platform_order_no)
    left join escalated using (channel, platform_order_no)
    left join current_statuses using (channel, platform_order_no)
),

final as (
    select
        ---------- ids
        channel,
        platform_order_no,

        ---------- days and times (timeliness)
        day,
        change_day,
        modified_at,
        loaded_at,

        ---------- completeness
        fields_expected,
        fields_present,

        ---------- consistency, accuracy
        is_consistent,
        is_accurate,

        ---------- controllability
        is_manual_review,
        is_held,
        is_escalated,
        current_status,
        current_status_entered_at,

        ---------- build bookkeeping
        '{{ checks_version }}'::text as checks_version,
        {{ build_columns() }}
    from order_checks
)

select * from final
