{#- Offline POS import files (the pos_orders template) parsed by connectors/csv_orders.py into the normalised order keys. -#}
{{ normalised_orders_staging('pos_orders', source_kind='file') }}
