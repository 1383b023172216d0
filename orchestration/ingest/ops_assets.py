"""The merchant's own systems (WMS, carriers, CS desk, behaviour log, catalogue) into raw."""

import dagster as dg

from connectors.ops_sources import SOURCES
from orchestration.resources import ChannelsResource, WarehouseResource

OPS_KEYS = [dg.AssetKey(["raw", s.table]) for s in SOURCES]


@dg.multi_asset(
    name="merchant_ops_systems",
    group_name="ingest",
    specs=[
        dg.AssetSpec(
            key,
            description=f"raw.{key.path[-1]} from the merchant's ops API (incremental, upserted).",
            owners=["team:data-engineering"],
            kinds={"python", "postgres"},
        )
        for key in OPS_KEYS
    ],
    can_subset=False,
)
def merchant_ops_systems(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    channels: ChannelsResource,
):
    """Pull WMS stock/events/movements, carrier shipments/tracks, CS tickets, the behaviour log,
    warehouses and SKUs from the ops API into raw (cursor per table, 10-minute lookback)."""
    from connectors.ops_sources import ingest_ops, ops_endpoint

    base_url, token = ops_endpoint(channels.sandbox_file)
    with warehouse.connect() as conn:
        received = ingest_ops(conn, base_url, token, run_id=context.run.run_id)
        totals = {
            s.table: conn.execute(f"select count(*) from raw.{s.table}").fetchone()[0]
            for s in SOURCES
        }
    for source in SOURCES:
        yield dg.MaterializeResult(
            asset_key=["raw", source.table],
            metadata={
                "received": dg.MetadataValue.int(received.get(source.table, 0)),
                "rows_in_table": dg.MetadataValue.int(totals[source.table]),
            },
        )


ops_schedule = dg.ScheduleDefinition(
    name="merchant_ops_systems_schedule",
    target=dg.AssetSelection.assets(*OPS_KEYS),
    cron_schedule="*/10 * * * *",
    execution_timezone="Asia/Shanghai",
    description="Pull the merchant's ops systems every 10 minutes.",
)
