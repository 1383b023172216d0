{#- Every (channel, platform_order_no) of the model exists in `to` (a composite foreign key;
    rows without an order number pass). -#}
{% test has_parent_order(model, to) %}
with child as (
    select channel, platform_order_no
    from {{ model }}
    where platform_order_no is not null
),

parent as (
    select channel, platform_order_no
    from {{ to }}
)

select child.channel, child.platform_order_no
from child
left join parent
    on parent.channel = child.channel
    and parent.platform_order_no = child.platform_order_no
where parent.platform_order_no is null
{% endtest %}
