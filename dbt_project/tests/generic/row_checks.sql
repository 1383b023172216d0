{#- The per-row checks of a large model in one scan: each check of a separate test read every
    row again (fct_order_status_transitions, 9.8 M rows at 1,000,000 orders: four scans of
    7.3 s each in a backfill's build, on the path to the marts after it). Model-level:
      not_null: [columns]                    none of them is null
      non_negative: [columns]                none is below zero (nulls pass)
      accepted_values: {column: [values]}    each is one of its values (nulls pass)
      no_unmasked_phone: [columns]           none holds a clear mobile number
      amounts_reconcile: {} or its arguments paid = goods - discounts + freight
    A failing row is returned with its `key` columns and `failed_checks`, naming every check
    it fails ("paid_amount is negative; unified_status is not an accepted value"). -#}
{% test row_checks(model, key=['channel', 'platform_order_no'], not_null=[], non_negative=[],
                   accepted_values={}, no_unmasked_phone=[], amounts_reconcile=none) %}
{%- set checks = [] -%}
{%- for column in not_null -%}
    {%- do checks.append((column ~ ' is null', column ~ ' is null')) -%}
{%- endfor -%}
{%- for column in non_negative -%}
    {%- do checks.append((column ~ ' < 0', column ~ ' is negative')) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {%- do checks.append((column ~ ' not in (' ~ quoted | join(', ') ~ ')',
                          column ~ ' is not an accepted value')) -%}
{%- endfor -%}
{%- for column in no_unmasked_phone -%}
    {%- do checks.append((unmasked_phone(column), column ~ ' holds an unmasked phone number')) -%}
{%- endfor -%}
{%- if amounts_reconcile is not none -%}
    {%- do checks.append((amounts_do_not_reconcile(**amounts_reconcile),
                          'paid amount does not reconcile')) -%}
{%- endif -%}
{%- if not checks -%}
    {{ exceptions.raise_compiler_error(
        'row_checks on ' ~ model ~ ': no check listed; give not_null, non_negative, '
        ~ 'accepted_values, no_unmasked_phone or amounts_reconcile') }}
{%- endif %}
select
    {%- for column in key %}
    {{ column }},
    {%- endfor %}
    concat_ws('; '
        {%- for predicate, label in checks %},
        case when {{ predicate }} then '{{ label }}' end
        {%- endfor %}
    ) as failed_checks
from {{ model }}
where
    {%- for predicate, label in checks %}
    {% if not loop.first %}or {% endif %}{{ predicate }}
    {%- endfor %}
{% endtest %}
