{#- Every (channel, platform_order_no) of the model exists in `to` (a composite foreign key;
    rows without an order number pass). Fails with the orders missing from `to`.
    One probe of `to`'s key index per distinct order (`offset 0` keeps the sub-query from
    becoming a join): as a join, PostgreSQL hashed the whole of `to` for the 10,000 orders an
    incremental build wrote (fct_order_status_transitions -> fct_orders at 1,000,000 orders:
    55,000 pages read, 0.3-0.7 s; probed: 4,000 pages, 0.1 s); every row (the nightly full
    check) takes about as long either way. -#}
{% test has_parent_order(model, to) %}
with child as (
    select channel, platform_order_no
    from {{ model }}
    where platform_order_no is not null
),

child_orders as (
    select distinct channel, platform_order_no
    from child
)

select child_orders.channel, child_orders.platform_order_no
from child_orders
where not exists (
    select
    from {{ to }} as parent
    where parent.channel = child_orders.channel
        and parent.platform_order_no = child_orders.platform_order_no
    offset 0
)
{% endtest %}
