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
    this user; no usage on the other warehouse schemas. The two dbt ops may end at the same
    moment and PostgreSQL fails one of two concurrent grants on an object ("tuple concurrently
    updated"): an advisory lock takes them in turn. The grants on marts tables only after a
    build that wrote to marts: the other op's (the decision worker's, every few seconds) would
    otherwise reach a marts table the marts build is swapping in. -#}
{% macro grant_bi_reader(role=var('bi_reader_role', 'bi_reader')) -%}
    {%- if execute -%}
    {%- set built_marts = results | selectattr('node.resource_type', 'in', ['model', 'seed'])
                                  | selectattr('node.schema', 'equalto', 'marts') | list -%}
    do $bi$
    begin
        perform pg_advisory_xact_lock(hashtext('orderpulse.grant_bi_reader'));
        grant usage on schema marts to {{ role }};
        {%- if built_marts or not results %}
        grant select on all tables in schema marts to {{ role }};
        alter default privileges in schema marts grant select on tables to {{ role }};
        {%- endif %}
        revoke all on schema raw, staging, intermediate, ops from {{ role }};
        revoke all on all tables in schema raw from {{ role }};
    end
    $bi$;
    {%- endif -%}
{%- endmacro %}
