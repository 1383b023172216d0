{#- No value holds a clear mainland mobile number: 1[3-9] + 9 digits standing on its own
    (in Chinese text too), not inside a longer id such as an order or waybill number. -#}
{% test no_unmasked_phone(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }}::text ~ '(^|[^0-9A-Za-z])1[3-9][0-9]{9}([^0-9A-Za-z]|$)'
{% endtest %}
