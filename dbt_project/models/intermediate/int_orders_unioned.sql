{#- All sources' standard order fields in one relation. A view: incremental marts filter it
    on raw_xid, and the filter reaches every source table. -#}
{%- set columns = order_columns() -%}

with
{% for s in order_channels() %}
{{ s }} as (
    select * from {{ ref('stg_' ~ s ~ '__orders') }}
),
{% endfor %}

unioned as (
    {% for s in order_channels() -%}
    select {{ columns | join(', ') }} from {{ s }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
