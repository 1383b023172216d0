{#- The `bi_reader` role: reads schema `marts` and nothing else. A NOLOGIN group role (dbt
    never handles a password: its SQL lands in logs); grant it to a login user for a BI tool:
    `create role metabase login password '...' in role bi_reader`. -#}

{#- on-run-start: the role must exist before on-run-end grants to it. Roles are
    cluster-wide and another database's dbt run may create it at the same moment. -#}
{% macro create_bi_reader_role(role=var('bi_reader_role', 'bi_reader')) -%}
do $bi$
begin
    if not exists (select 1 from pg_roles where rolname = '{{ role }}') then
        create role {{ role }} nologin;
    end if;
exception
    when duplicate_object or unique_violation then null;
end
$bi$;
{%- endmacro %}

{#- on-run-end: usage on marts and select on everything in it, also tables created later by
    this user; no usage on the other warehouse schemas. -#}
{% macro grant_bi_reader(role=var('bi_reader_role', 'bi_reader')) -%}
    {%- if execute -%}
    do $bi$
    begin
        grant usage on schema marts to {{ role }};
        grant select on all tables in schema marts to {{ role }};
        alter default privileges in schema marts grant select on tables to {{ role }};
        revoke all on schema raw, staging, intermediate, ops from {{ role }};
        revoke all on all tables in schema raw from {{ role }};
    end
    $bi$;
    {%- endif -%}
{%- endmacro %}
