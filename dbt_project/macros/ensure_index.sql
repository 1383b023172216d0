{#- Post-hook for the indexes dbt's `indexes` config cannot express (partial, covering), which
    must also reach a table built before they were added: a model lists them in its config
    `ensured_indexes` ({prefix: "(columns) [include (...)] [where ...]"}), and each is created
    when no index named `<prefix>...` is on the relation. Named with the transaction id, as
    dbt names its own: on a full refresh the old table (renamed to a backup, dropped after the
    hooks) still holds the old index's name, so a fixed name with `if not exists` would skip
    and the index would go with the backup. -#}
{% macro ensure_indexes() -%}
    {#- a mapping only when the model runs (while dbt parses, `config.get` answers a string) -#}
    {%- set wanted = config.get('ensured_indexes') -%}
    {%- for prefix, definition in (wanted if wanted is mapping else {}).items() %}
    do $ensure_index$ begin
        if not exists (
            select from pg_indexes
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                and left(indexname, {{ prefix | length }}) = '{{ prefix }}'
        ) then
            execute format('create index %I on {{ this }} {{ definition | replace("'", "''") }}',
                           '{{ prefix }}_' || txid_current());
        end if;
    end $ensure_index${% if not loop.last %};{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- Post-hook beside ensure_indexes: drops the plain B-tree index (not unique, no include, no
    where) on exactly `columns` of the relation, the one an ensured covering index on the same
    key supersedes; a warehouse built before the covering index still has it, and every
    write would keep both up. -#}
{% macro drop_superseded_index(columns) -%}
    do $drop_index$
    declare
        superseded text;
    begin
        for superseded in
            select indexname from pg_indexes
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                and indexdef like '% USING btree ({{ columns | join(", ") }})'
                and indexdef not like 'CREATE UNIQUE %'
        loop
            execute format('drop index %I.%I', '{{ this.schema }}', superseded);
        end loop;
    end $drop_index$
{%- endmacro %}

{#- Post-hook beside ensure_indexes: drops the relation's indexes named `<prefix>_...` for each
    of `prefixes`, ensured indexes whose definition changed under a new prefix (ensure_indexes
    keeps an index by its prefix, so a changed definition needs a new one). -#}
{% macro drop_indexes_named(prefixes) -%}
    do $drop_named$
    declare
        replaced text;
    begin
        for replaced in
            select indexname from pg_indexes
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                and indexname like any (array[
                    {%- for prefix in prefixes %}'{{ prefix }}\_%'{{ ', ' if not loop.last }}{% endfor -%}
                ])
        loop
            execute format('drop index %I.%I', '{{ this.schema }}', replaced);
        end loop;
    end $drop_named$
{%- endmacro %}
