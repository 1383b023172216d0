{#- Change detection for incremental models by transaction id instead of a load timestamp:
    a loader transaction that started before the last build but committed after it has an older
    `loaded_at` yet a transaction id at or above that build's snapshot xmin, so nothing is
    missed and no lookback window is needed.

    - `intermediate.model_builds` holds, per incremental model, the snapshot xmin taken when its
      latest build began (`built_xid`) and the one of the build before (`previous_built_xid`),
      written by a pre-hook inside the build's transaction (a failed build leaves it as it was).
      Anything written by a transaction at or above the latest `built_xid` may not have been
      seen by that build, so the next build looks at it again.
    - Every row stores `_written_xid`, the transaction that wrote it (indexed): a downstream
      model finds the rows changed since its own last build with an index range scan instead of
      a scan of the whole table by xmin, and a data test finds the rows the current build wrote
      (`_written_xid >= built_xid`).
    - The register also keeps that statement's whole snapshot (`built_snapshot`): a row whose
      `_written_xid` is visible in it was committed before the build began, so the build saw
      it. Without it, every transaction still open when a build began (a sibling model's
      build on another dbt thread, a load) pinned its xmin, and the next build took again
      everything written since: the first incremental build after a 100,000-order base
      re-inserted 982,950 status transitions (23 s) for 10,000 changed orders.
    - `_built_xid` (the snapshot xmin of the statement that wrote the row) stays for diagnosis.
    Ids are 64-bit (epoch-aware) and never wrap. Raw tables have only their 32-bit xmin:
    `last_built_xid()` compares within the 32-bit space (after a wraparound, run once with
    --full-refresh). -#}

{% macro build_register() -%}
    intermediate.model_builds
{%- endmacro %}

{#- on-run-start -#}
{% macro create_build_register() -%}
    create schema if not exists intermediate;
    create table if not exists {{ build_register() }} (
        model              text primary key,
        built_xid          bigint not null,
        previous_built_xid bigint,
        built_at           timestamptz not null,
        invocation_id      text
    );
    -- the views whose data tests all passed, by fingerprint (orchestration/dbt/view_tests.py)
    create table if not exists intermediate.view_tests_passed (
        view_key    text primary key,
        fingerprint text not null,
        passed_at   timestamptz not null
    );
    -- registers made before the snapshots were kept: null means "by xmin only". Only when a
    -- column is missing: `alter table` locks the register whole even when it adds nothing,
    -- and the other dbt op's models write their rows in it while they build
    do $register$
    begin
        if (select count(*) from information_schema.columns
            where table_schema = 'intermediate' and table_name = 'model_builds'
                and column_name in ('built_snapshot', 'previous_built_snapshot', 'loaded_since')
        ) < 3 then
            alter table {{ build_register() }}
                add column if not exists built_snapshot text,
                add column if not exists previous_built_snapshot text,
                add column if not exists loaded_since timestamptz;
        end if;
    end
    $register$
{%- endmacro %}

{#- pre-hook of every model: an incremental model registers the start of its build; the others
    render nothing, which dbt skips (no statement per view and table). -#}
{% macro register_build() -%}
    {%- if config.get('materialized') == 'incremental' -%}
    insert into {{ build_register() }} as register
        (model, built_xid, previous_built_xid, built_snapshot, previous_built_snapshot,
         loaded_since, built_at, invocation_id)
    values (
        '{{ this }}', {{ built_xid() }}, null, pg_current_snapshot()::text, null,
        nullif(current_setting('orderpulse.loaded_since', true), '')::timestamptz, now(),
        '{{ invocation_id }}'
    )
    on conflict (model) do update set
        previous_built_xid = register.built_xid,
        built_xid = excluded.built_xid,
        previous_built_snapshot = register.built_snapshot,
        built_snapshot = excluded.built_snapshot,
        loaded_since = excluded.loaded_since,
        built_at = excluded.built_at,
        invocation_id = excluded.invocation_id
    {%- endif -%}
{%- endmacro %}

{#- pre-hook before register_build: when the oldest transaction running now began, kept for
    register_build in a transaction-local setting. Every loader stamps `loaded_at` with its
    transaction's start (`now()`), so a raw row the build about to start cannot see (written
    by a transaction running at its snapshot, or by a later one) has `loaded_at` at or after
    this: the next build finds new raw rows through the `loaded_at` index instead of reading
    whole raw tables for their xmin (the 5.4 M-row behaviour log: 12 s of a 10,000-order
    cycle at 1,000,000 orders). Read in a statement before the snapshot is taken (PostgreSQL
    keeps the activity view as first read in a transaction), less 5 minutes for clock steps
    (var `loaded_since_margin`).
    Empty when this role cannot see every session's transaction (not a superuser, not in
    pg_read_all_stats): then by xmin alone. -#}
{% macro note_loaded_since() -%}
    {%- if config.get('materialized') == 'incremental' -%}
    select set_config(
        'orderpulse.loaded_since',
        case
            when (select rolsuper from pg_roles where rolname = current_user)
                or pg_has_role('pg_read_all_stats', 'member')
                then (select (least(clock_timestamp(), min(xact_start))
                              - interval '{{ var("loaded_since_margin", "5 minutes") }}')::text
                      from pg_stat_activity)
            else ''
        end,
        true
    )
    {%- endif -%}
{%- endmacro %}

{% macro built_xid() -%}
    pg_snapshot_xmin(pg_current_snapshot())::text::bigint
{%- endmacro %}

{% macro written_xid() -%}
    pg_current_xact_id()::text::bigint
{%- endmacro %}

{#- The bookkeeping columns of an incremental model's rows. -#}
{% macro build_columns() -%}
    now() as _built_at,
    {{ built_xid() }} as _built_xid,
    {{ written_xid() }} as _written_xid
{%- endmacro %}

{#- The index every incremental model carries for change detection and scoped tests. -#}
{% macro build_indexes() -%}
    {{ return([{'columns': ['_written_xid']}]) }}
{%- endmacro %}

{#- Where the last build of `relation` (default: this model) began, as a literal read when the
    model is compiled (dbt compiles each node just before running it, before its pre-hook
    registers the new build). A literal, not a sub-query: the planner then estimates how few
    rows changed from the `_written_xid` index and picks index scans. 0 when never
    registered: look at everything. -#}
{% macro registered_build(relation=none, column='built_xid') -%}
    {{ return(registered_build_and_snapshot(relation, column)[0]) }}
{%- endmacro %}

{#- [xid, snapshot text] of the register's `<which>_xid` and `<which>_snapshot` for a
    relation, read in one query; [0, ''] when never registered ('' when kept no snapshot).
    `column` may also name the xid column itself (`built_xid`, `previous_built_xid`). -#}
{% macro registered_build_and_snapshot(relation=none, column='built_xid') -%}
    {%- set row = register_row([column, column | replace('_xid', '_snapshot')], relation) -%}
    {%- if row is none or row[0] is none -%}
        {{ return([0, '']) }}
    {%- endif -%}
    {{ return([row[0] | int, (row[1] or '') | string]) }}
{%- endmacro %}

{#- The register's row for `relation` (default: this model): the values of `columns`, or none
    when never registered (or while parsing). -#}
{% macro register_row(columns, relation=none) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set register = adapter.get_relation(
        database=target.database, schema='intermediate', identifier='model_builds') -%}
    {%- if register is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select {{ columns | join(', ') }}
        from {{ build_register() }} where model = '{{ relation or this }}'
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {%- if result is none or result.rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(result.rows[0]) }}
{%- endmacro %}

{#- The condition "written by a transaction the last build of `relation` (default: this model)
    did not see": at or above that build's xmin (the `_written_xid` index range) and not
    visible in its snapshot. `which='previous_built'` is the build before (for post-hooks,
    which render after the pre-hook registered the current build). -#}
{% macro unseen_by_last_build(column='_written_xid', relation=none, which='built') -%}
    {%- set xid, snapshot = registered_build_and_snapshot(relation, which ~ '_xid') -%}
    {{ column }} >= {{ xid }}
    {%- if snapshot %}
        and not pg_visible_in_snapshot({{ column }}::text::xid8, '{{ snapshot }}'::pg_snapshot)
    {%- endif %}
{%- endmacro %}

{#- The same, for raw tables' 32-bit xmin. -#}
{% macro last_built_xid() -%}
    {{ registered_build() % 4294967296 }}
{%- endmacro %}

{#- The condition "a raw row the last build of this model did not see", for a raw table (or
    a view over raw tables) with its xmin as `raw_xid` and the loader's `loaded_at`: the xmin
    test, and when the register knows when the oldest transaction then running began, a
    `loaded_at` bound the planner can answer from the raw table's `loaded_at` index
    (see note_loaded_since). A raw row edited by hand must get `loaded_at = now()` to be seen
    again (or run with --full-refresh). -#}
{% macro unseen_raw_rows(xid_column='raw_xid', loaded_column='loaded_at') -%}
    {%- set row = register_row(['built_xid', 'loaded_since::text']) -%}
    {%- set xid = 0 if row is none or row[0] is none else row[0] | int -%}
    {{ xid_column }} >= {{ xid % 4294967296 }}
    {%- if row is not none and row[1] %} and {{ loaded_column }} >= '{{ row[1] }}'::timestamptz
    {%- endif %}
{%- endmacro %}

{#- `select <keys>` of the rows of an upstream incremental model written since this model was
    last built (index range scan on `_written_xid`). -#}
{% macro changed_rows(relation, keys=['channel', 'platform_order_no']) -%}
    select {{ keys | join(', ') }}
    from {{ relation }}
    where {{ unseen_by_last_build() }}
{%- endmacro %}

{#- `select *` of `relation`'s rows of the orders `changed_keys` (a query of channel,
    platform_order_no) names. While those keys are under a tenth of `relation`'s rows (var
    `probe_share`), one index probe per order on `relation`'s (channel, platform_order_no, ...)
    index; a larger change (a backfill into a built warehouse) is read as a join, which then
    costs less than a probe per order. Counted when the model is compiled, by `count_keys`
    when `changed_keys` names a CTE of the model (default: `changed_keys`).
    As `(channel, platform_order_no) in (...)` the planner reads the whole table: it samples an
    order-child table's order numbers as ~150,000 distinct out of 1,000,000 (an order's rows
    sit together, so the sample sees each several times) and so takes 10,000 changed orders
    for 40 % of the rows. `offset 0` keeps the lateral sub-query a sub-query, so the probes are
    what runs: fct_order_status_history at 1,000,000 orders, 10,000 changed, read 211,755
    pages in 4.2 s and reads 10,388 in 0.5 s. `key_count`: the keys already counted (a model
    that reads several tables for the same changed orders counts them once, not per table).
    `sized_by`: the table whose size decides when `relation` is a view (a view has none).
    `columns` and `where` narrow each probe to what a covering index holds, so the probe is an
    index-only scan that never visits the heap (`where` filters on those columns). -#}
{% macro rows_of_changed_orders(
    relation, changed_keys, count_keys=none, key_count=none, columns='*', where=none,
    sized_by=none
) -%}
    {%- if changed_keys_are_few(sized_by or relation, count_keys or changed_keys, key_count) %}
    select order_rows.*
    from (
        select distinct channel, platform_order_no from ({{ changed_keys }}) as keys
    ) as changed_orders
    cross join lateral (
        select {{ columns }}
        from {{ relation }} as order_row
        where order_row.channel = changed_orders.channel
            and order_row.platform_order_no = changed_orders.platform_order_no
            {%- if where %}
            and ({{ where }})
            {%- endif %}
        offset 0
    ) as order_rows
    {%- else %}
    select {{ columns }}
    from {{ relation }}
    where (channel, platform_order_no) in ({{ changed_keys }})
        {%- if where %}
        and ({{ where }})
        {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- The rows of `relation` a model reads by order: those of the orders `changed_keys` names
    (rows_of_changed_orders, `key_count` keys) on an incremental run, every row when
    `changed_keys` is none (a first build, a full refresh); `columns` and `where` as there. -#}
{% macro rows_of_orders(relation, changed_keys, key_count=none, columns='*', where=none) -%}
    {%- if changed_keys is none %}
    select {{ columns }}
    from {{ relation }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
    {%- else %}
    {{ rows_of_changed_orders(
        relation, changed_keys, key_count=key_count, columns=columns, where=where
    ) }}
    {%- endif %}
{%- endmacro %}

{#- The number of rows `query` returns, counted when the model is compiled (0 while parsing):
    a `key_count` for several rows_of_changed_orders of the same keys. -#}
{% macro count_of(query) -%}
    {%- if not execute -%}
        {{ return(0) }}
    {%- endif -%}
    {{ return(run_query('select count(*) from (' ~ query ~ ') as keys').rows[0][0] | int) }}
{%- endmacro %}

{#- Whether the rows `changed_keys` returns (or `key_count`, when given) are fewer than
    `probe_share` of `relation`'s rows (the planner's count from the last ANALYZE; never
    analysed: not few). True while parsing. -#}
{% macro changed_keys_are_few(relation, changed_keys, key_count=none) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set keys = count_of(changed_keys) if key_count is none else key_count | int -%}
    {%- set query -%}
        select reltuples::bigint from pg_class where oid = '{{ relation }}'::regclass
    {%- endset -%}
    {%- set rows_now = run_query(query).rows[0][0] | int -%}
    {{ return(rows_now > 0 and keys < rows_now * var('probe_share', 0.1)) }}
{%- endmacro %}

{#- The keys of orders about which any decision changed since this model was last built
    (models using it declare `-- depends_on:` the ops sources, see ops_depends_on). -#}
{% macro changed_decision_keys() -%}
    {%- for table in ops_tables() %}
    {% if not loop.first %}union{% endif %}
    select channel, platform_order_no
    from {{ source('ops', table) }}
    where xmin::text::bigint >= {{ last_built_xid() }}
    {%- endfor %}
{%- endmacro %}

{% macro ops_tables() -%}
    {{ return(['routing_decisions', 'risk_assessments', 'review_queue',
               'merge_candidates', 'inventory_locks']) }}
{%- endmacro %}

{#- post-hook of the models rebuilt per order by delete+insert: delete+insert replaces the rows
    of the orders the build produced rows for, so an order that changed and now has no row at
    all (a refund withdrawn: no longer an after-sale) would keep its old one. This deletes
    the rows of the orders changed in `upstreams` since the last build that this build did
    not write. (Hooks render after the pre-hook registered this build: the last build is
    `previous_built_xid` here.) -#}
{% macro delete_orders_without_rows(upstreams) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where _written_xid <> {{ written_xid() }}
        and (channel, platform_order_no) in (
            {%- for upstream in upstreams %}
            {% if not loop.first %}union{% endif %}
            select channel, platform_order_no
            from {{ upstream }}
            where {{ unseen_by_last_build(relation=this, which='previous_built') }}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}
