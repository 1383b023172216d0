{#- Every order source, in union order: the six marketplaces, then the SFTP exports,
    the H5 mall / ERP bridge and the POS import. -#}
{% macro order_sources() -%}
    {{ return(['taobao', 'jd', 'douyin', 'pdd', 'kuaishou', 'youzan',
               'regional_a', 'regional_b', 'h5mall', 'pos']) }}
{%- endmacro %}
