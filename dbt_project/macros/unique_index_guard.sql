{#- A query that returns a row when PostgreSQL itself guards `relation` against duplicate
    `columns`: a valid unique index whose key is exactly those columns (any order), with no
    predicate or expression. Such an index refused every duplicate at write time, so a
    uniqueness test over every row need not group them again (fct_inventory_movements'
    `movement_key` at 1,000,000 orders: 17 s of a backfill's tests). '' when `relation` is not
    a table (a test scoped to a build's rows reads a sub-query: cheap, tested as before). -#}
{% macro unique_index_guard(relation, columns) -%}
    {%- if relation.identifier is not defined or relation.schema is not defined -%}
        {{ return('') }}
    {%- endif -%}
    {%- set names = columns | map('lower') | map('replace', '"', '') | map('trim') | sort -%}
    select 1
    from pg_catalog.pg_index as guard_index
    where guard_index.indrelid = to_regclass(
            format('%I.%I', '{{ relation.schema }}', '{{ relation.identifier }}')
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
