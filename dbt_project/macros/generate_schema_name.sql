{#- Models land in exactly the schema named by +schema (staging / intermediate / marts),
    not dbt's default `<target schema>_<custom>`: the schema names are a contract. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
