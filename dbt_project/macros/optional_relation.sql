{#- The relation of a source table when it exists, else none. The source is still referenced so
    the dependency shows in the DAG (and in Dagster) before the table has ever been loaded. -#}
{% macro optional_source(source_name, table_name) -%}
    {%- set rel = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = adapter.get_relation(
        database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
    {{ return(found) }}
{%- endmacro %}

{#- `select` of a raw table that may not exist yet: its rows plus raw_xid, or no rows with
    the loader's columns (payload, source_modified_at, loaded_at). -#}
{% macro select_optional_raw(table_name) -%}
    {%- set relation = optional_source('raw', table_name) -%}
    {%- if relation is not none -%}
    select *, xmin::text::bigint as raw_xid from {{ relation }}
    {%- else -%}
    select
        null::jsonb as payload,
        null::timestamptz as source_modified_at,
        null::timestamptz as loaded_at,
        null::bigint as raw_xid
    where false
    {%- endif -%}
{%- endmacro %}

{#- `select` of a raw table with typed columns that may not exist yet: its rows plus raw_xid,
    or no rows with `columns` ({name: type}). -#}
{% macro select_optional_typed(table_name, columns) -%}
    {%- set relation = optional_source('raw', table_name) -%}
    {%- if relation is not none -%}
    select
        {%- for name in columns %}
        {{ name }},
        {%- endfor %}
        xmin::text::bigint as raw_xid
    from {{ relation }}
    {%- else -%}
    select
        {%- for name, type in columns.items() %}
        null::{{ type }} as {{ name }},
        {%- endfor %}
        null::bigint as raw_xid
    where false
    {%- endif -%}
{%- endmacro %}
