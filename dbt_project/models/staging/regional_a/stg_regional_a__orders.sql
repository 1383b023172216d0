{#- Regional platform CSV exports from the SFTP drop, parsed by connectors/csv_orders.py into the normalised order keys. -#}
{{ normalised_orders_staging('regional_a_orders', source_kind='sftp') }}
