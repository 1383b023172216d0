{%- set sources = ['taobao', 'jd', 'douyin', 'pdd', 'kuaishou', 'youzan'] -%}

with
{% for s in sources %}
{{ s }} as (
    select * from {{ ref('stg_' ~ s ~ '__orders') }}
),
{% endfor %}

unioned as (
    {% for s in sources -%}
    select * from {{ s }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
