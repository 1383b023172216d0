{#- All sources' order lines in one relation. -#}
{%- set columns = order_item_columns() -%}

with
{% for s in order_channels() %}
{{ s }} as (
    select * from {{ ref('stg_' ~ s ~ '__order_items') }}
),
{% endfor %}

unioned as (
    {% for s in order_channels() -%}
    select {{ columns | join(', ') }} from {{ s }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
