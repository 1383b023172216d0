{#- paid = goods - discounts + freight, within `tolerance` yuan (one cent by default). -#}
{% test amounts_reconcile(model, goods='goods_value', discount='discount_amount',
                          freight='freight', paid='paid_amount', tolerance=0.01) %}
select *
from {{ model }}
where {{ amounts_do_not_reconcile(goods, discount, freight, paid, tolerance) }}
{% endtest %}
