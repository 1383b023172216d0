{#-
    Views are replaced in place (`create or replace view`).

    dbt's default view materialisation builds the view under a temporary name, swaps it in
    and drops the old one with CASCADE, which also drops every view built on it. In live mode
    a run that rebuilt one channel's staging view removed the intermediate views the
    decisions read until some later run rebuilt them (the decisions failed in between).
    `create or replace view` keeps the dependants; only when the columns changed
    incompatibly (a code change, PostgreSQL's invalid_table_definition) is the view dropped
    and created again, as dbt would, in the same transaction.
-#}
{%- materialization view, adapter='postgres' -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set grant_config = config.get('grants') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- if existing_relation is not none and not existing_relation.is_view %}
    {{ drop_relation_if_exists(existing_relation) }}
  {%- endif %}

  {% call statement('main') -%}
    {{ orderpulse_replace_view_sql(target_relation, sql) }}
  {%- endcall %}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}


{% macro orderpulse_replace_view_sql(relation, sql) -%}
do $orderpulse_view$
begin
    execute $orderpulse_sql$ create or replace view {{ relation }} as (
{{ sql }}
    ) $orderpulse_sql$;
exception when invalid_table_definition then
    -- a column renamed, dropped, moved or retyped: what dbt's default would do
    execute $orderpulse_sql$ drop view if exists {{ relation }} cascade $orderpulse_sql$;
    execute $orderpulse_sql$ create view {{ relation }} as (
{{ sql }}
    ) $orderpulse_sql$;
end
$orderpulse_view$
{%- endmacro %}
