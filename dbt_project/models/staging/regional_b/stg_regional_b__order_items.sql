{#- One row per payload `items` element (normalised keys: sku, title, qty, price). -#}
{{ normalised_order_items_staging('regional_b_orders') }}
