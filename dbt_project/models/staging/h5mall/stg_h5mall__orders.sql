{#- The H5 mall / legacy ERP view (sandbox/erp.py h5_orders_v) read by the SQL bridge, its columns renamed onto the normalised order keys (config/channels.yaml db_bridge.columns). -#}
{{ normalised_orders_staging('h5mall_orders', source_kind='db') }}
