{#- Every (channel, platform_order_no) of the model exists in `to` (a composite foreign key;
    rows without an order number pass). -#}
{% test has_parent_order(model, to) %}
select child.channel, child.platform_order_no
from {{ model }} as child
left join {{ to }} as parent
    on parent.channel = child.channel
    and parent.platform_order_no = child.platform_order_no
where child.platform_order_no is not null
    and parent.platform_order_no is null
{% endtest %}
