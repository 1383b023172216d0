{#- Youzan: the coupons of one sponsor (platform | shop) in order_promotion.order[], yuan.
    A scalar subquery per row rather than a joined CTE, so the staging view stays one scan that
    the incremental xid filter reaches. -#}
{% macro youzan_coupons(sponsor) -%}
    (
        select sum({{ to_yuan("p ->> 'discount_fee'") }})
        from jsonb_array_elements(
            {{ as_json_array("payload -> 'order_promotion' -> 'order'") }}
        ) as p
        where p ->> 'sponsor' = '{{ sponsor }}'
    )
{%- endmacro %}
