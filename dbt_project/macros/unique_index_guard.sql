{#- A query that returns a row when PostgreSQL itself guards `relation` against duplicate
    `columns`: a valid unique index whose key is exactly those columns (any order), with no
    predicate or expression. Such an index refused every duplicate at write time, so a
    uniqueness test over every row need not group them again (fct_inventory_movements'
    `movement_key` at 1,000,000 orders: 17 s of a backfill's tests). `relation` is a table or
    the sub-query of a test scoped to a build's rows; '' for anything else (a view's tests
    group every row, as before). -#}
{% macro unique_index_guard(relation, columns) -%}
    {%- if relation.identifier is defined and relation.schema is defined -%}
        {%- set schema, name = relation.schema, relation.identifier -%}
    {%- else -%}
        {#- a test scoped to a build's rows reads `(select * from <relation> where ...)`
            (macros/test_scope.sql): an index over the whole table guards those rows too -#}
        {%- set found = modules.re.match(
            '^[(]select [*] from "[^"]+"[.]"([^"]+)"[.]"([^"]+)" where ', relation | string
        ) -%}
        {%- if not found -%}
            {{ return('') }}
        {%- endif -%}
        {%- set schema, name = found.group(1), found.group(2) -%}
    {%- endif -%}
    {%- set names = columns | map('lower') | map('replace', '"', '') | map('trim') | sort -%}
    select 1
    from pg_catalog.pg_index as guard_index
    where guard_index.indrelid = to_regclass(
            format('%I.%I', '{{ schema }}', '{{ name }}')
        )
        and guard_index.indisunique
        and guard_index.indisvalid
        and guard_index.indpred is null
        and guard_index.indexprs is null
        and guard_index.indnkeyatts = {{ names | length }}
        and array(
            select guard_column.attname::text
            from pg_catalog.pg_attribute as guard_column
            where guard_column.attrelid = guard_index.indrelid
                and guard_column.attnum
                    = any((guard_index.indkey::int2[])[0:guard_index.indnkeyatts - 1])
            order by 1
        ) = array[{% for name in names %}'{{ name }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text[]
{%- endmacro %}
