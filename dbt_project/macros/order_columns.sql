{#- The standard order fields every stg_<source>__orders model produces, in this order;
    int_orders_unioned selects exactly these from each. -#}
{% macro order_columns() -%}
    {{ return([
        'channel', 'platform_order_no', 'shop_id', 'buyer_id', 'buyer_nick', 'buyer_ip',
        'receiver_name', 'receiver_phone', 'receiver_address',
        'province', 'city', 'district', 'country',
        'goods_value', 'platform_discount', 'shop_discount', 'discount_amount', 'freight',
        'paid_amount', 'currency',
        'platform_status', 'refund_status',
        'buyer_note', 'seller_note', 'carrier', 'tracking_no',
        'hs_code', 'declared_value',
        'created_at', 'paid_at', 'shipped_at', 'delivered_at', 'closed_at', 'modified_at',
        'source', 'content_hash', 'loaded_at', 'raw_xid',
    ]) }}
{%- endmacro %}

{#- The standard fields of every stg_<source>__order_items model. -#}
{% macro order_item_columns() -%}
    {{ return([
        'channel', 'platform_order_no', 'line_no', 'platform_line_id', 'sku', 'platform_sku_id',
        'title', 'qty', 'unit_price', 'line_goods_value', 'line_discount', 'line_paid_amount',
        'refund_status', 'loaded_at', 'raw_xid',
    ]) }}
{%- endmacro %}
