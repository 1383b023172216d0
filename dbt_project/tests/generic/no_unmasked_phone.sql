{#- No value holds a clear mainland mobile number (1[3-9] + 9 digits, not part of a longer
    digit run such as an order number). -#}
{% test no_unmasked_phone(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }}::text ~ '(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)'
{% endtest %}
