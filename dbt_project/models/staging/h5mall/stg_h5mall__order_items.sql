{#- One row per payload `items` element; the ERP's own line_no and unit_price columns win over
    the array position and the bridge's `price` copy (config/channels.yaml item_columns). -#}
{{ normalised_order_items_staging(
    'h5mall_orders',
    line_no_key='line_no',
    price_expr="coalesce(line ->> 'unit_price', line ->> 'price')"
) }}
