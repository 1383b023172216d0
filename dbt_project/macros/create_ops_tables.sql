{#- on-run-start: the decision tables of DESIGN.md "Contracts", created empty when the
    fulfillment assets have not run yet, so marts can left-join them from the first build.
    Only the contract columns: fulfillment owns these tables and may add more. -#}
{% macro create_ops_tables() -%}
do $ops$
begin
    perform pg_advisory_xact_lock(hashtext('orderpulse.ops_schema'));
    create schema if not exists ops;
    create table if not exists ops.routing_decisions (
        channel           text not null,
        platform_order_no text not null,
        decision          text,
        warehouse_id      text,
        carrier           text,
        rule              text,
        score             numeric,
        inputs            jsonb,
        decided_at        timestamptz
    );
    create table if not exists ops.risk_assessments (
        channel           text not null,
        platform_order_no text not null,
        score             numeric,
        signals           jsonb
    );
    create table if not exists ops.review_queue (
        channel           text not null,
        platform_order_no text not null,
        score             numeric,
        hold_until        timestamptz,
        decision          text
    );
    create table if not exists ops.merge_candidates (
        group_id          text,
        channel           text not null,
        platform_order_no text not null,
        reason            text
    );
    create table if not exists ops.inventory_locks (
        channel           text not null,
        platform_order_no text not null,
        sku               text,
        warehouse_id      text,
        qty               integer,
        state             text
    );
end
$ops$;
{%- endmacro %}
