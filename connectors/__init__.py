"""Getting data in: marketplace clients, SFTP, the DB bridge, the webhook receiver, the raw
loader and cursors. Plain library: never imports Dagster or `sandbox`."""
