{#- The one place fen (integer cents) become yuan numeric(14,2). -#}
{% macro fen_to_yuan(column_name, scale=2) -%}
    {{ return(adapter.dispatch('fen_to_yuan', 'orderpulse')(column_name, scale)) }}
{%- endmacro %}

{% macro default__fen_to_yuan(column_name, scale) -%}
    cast(({{ column_name }}) / 100.0 as numeric(14, {{ scale }}))
{%- endmacro %}

{% macro postgres__fen_to_yuan(column_name, scale) -%}
    round(({{ column_name }})::numeric / 100, {{ scale }})::numeric(14, {{ scale }})
{%- endmacro %}
