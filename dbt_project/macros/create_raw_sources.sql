{#- on-run-start: make `dbt build` work on an empty warehouse by creating the raw order tables
    the connectors have not created yet, with exactly connectors/raw_schema.py ORDERS_DDL's
    columns. Takes the same advisory lock as raw_schema.ensure_raw_tables so a concurrent first
    load and a dbt run do not race on the catalog. -#}
{% macro order_channels() -%}
    {{ return(['taobao', 'jd', 'douyin', 'pdd', 'kuaishou', 'youzan',
               'h5mall', 'pos', 'regional_a', 'regional_b']) }}
{%- endmacro %}

{% macro create_raw_sources() -%}
do $raw$
begin
    perform pg_advisory_xact_lock(hashtext('orderpulse.raw_schema'));
    create schema if not exists raw;
    {%- for channel in order_channels() %}
    create table if not exists raw.{{ channel }}_orders (
        channel            text        not null,
        platform_order_no  text        not null,
        source_modified_at timestamptz not null,
        payload            jsonb       not null,
        content_hash       text        not null,
        loaded_at          timestamptz not null default now(),
        run_id             text,
        primary key (channel, platform_order_no)
    );
    create index if not exists raw_{{ channel }}_orders_loaded_at
        on raw.{{ channel }}_orders (loaded_at);
    {%- endfor %}
end
$raw$;
{%- endmacro %}
