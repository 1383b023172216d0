{#- Every row satisfies the boolean SQL `expression` (a null result fails: write the null
    handling into the expression). One query checks several columns at once. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
