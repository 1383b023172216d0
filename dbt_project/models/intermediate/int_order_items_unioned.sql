{#- All sources' order lines in one relation. -#}
{%- set columns = order_item_columns() -%}

with
{% for s in order_sources() %}
{{ s }} as (
    select * from {{ ref('stg_' ~ s ~ '__order_items') }}
),
{% endfor %}

unioned as (
    {% for s in order_sources() -%}
    select {{ columns | join(', ') }} from {{ s }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
