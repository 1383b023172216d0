{#- Every order channel, in the order of config/channels.yaml (the channel registry): the
    union models read `stg_<channel>__orders` of each. The list is the project var
    `order_channels` (dbt_project.yml); tests/test_channel_registry.py checks that it names
    exactly the channels of config/channels.yaml. -#}
{% macro order_channels() -%}
    {{ return(var('order_channels')) }}
{%- endmacro %}
