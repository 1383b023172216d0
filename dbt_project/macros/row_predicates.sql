{#- The per-row predicates of the data tests (tests/generic), shared by each test on its own
    and by `row_checks`, which evaluates several in one scan. Each is true when the row fails. -#}

{#- A clear mainland mobile number: 1[3-9] + 9 digits standing on its own (in Chinese text
    too), not inside a longer id such as an order or waybill number. -#}
{% macro unmasked_phone(column) -%}
    {{ column }}::text ~ '(^|[^0-9A-Za-z])1[3-9][0-9]{9}([^0-9A-Za-z]|$)'
{%- endmacro %}

{#- paid differs from goods - discounts + freight by more than `tolerance` yuan. -#}
{% macro amounts_do_not_reconcile(goods='goods_value', discount='discount_amount',
                                  freight='freight', paid='paid_amount', tolerance=0.01) -%}
    ({{ paid }} is not null
        and abs({{ paid }} - ({{ goods }} - coalesce({{ discount }}, 0) + coalesce({{ freight }}, 0)))
            > {{ tolerance }})
{%- endmacro %}
