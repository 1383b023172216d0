"""The merchant systems (the merchant's own WMS, carriers, CS desk, behaviour log, catalogue)
into raw."""

import dagster as dg

from connectors.merchant_systems import SOURCES
from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, SCHEDULE_TIMEZONE, SCHEDULED_PULL_TAGS
from orchestration.resources import ChannelsResource, WarehouseResource
from orchestration.row_counts import row_count_metadata
from orchestration.threaded_executor import LOAD_OP_TAGS

MERCHANT_SYSTEMS_KEYS = [dg.AssetKey(["raw", s.table]) for s in SOURCES]


@dg.multi_asset(
    name="merchant_systems",
    group_name="ingest",
    specs=[
        dg.AssetSpec(
            key,
            description=(
                f"raw.{key.path[-1]} from the merchant systems' API (incremental, upserted)."
            ),
            owners=OWNERS,
            kinds={"python", "postgres"},
            code_version=source_version("connectors.merchant_systems", __name__),
        )
        for key in MERCHANT_SYSTEMS_KEYS
    ],
    can_subset=False,
    op_tags=LOAD_OP_TAGS,
)
def merchant_systems(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    channels: ChannelsResource,
):
    """Pull WMS stock/events/movements, carrier shipments/tracks, CS tickets, the behaviour log,
    warehouses and SKUs from the merchant systems' API into raw (cursor per table, 10-minute
    lookback)."""
    from connectors.merchant_systems import ingest_merchant_systems, merchant_systems_endpoint

    # imported here: the checks module builds on these assets
    from orchestration.quality.expectation_checks import start_import_if_checked

    start_import_if_checked(context.run)  # overlaps the pull
    base_url, token = merchant_systems_endpoint(channels.sandbox_file)
    with warehouse.connect() as conn:
        received = ingest_merchant_systems(conn, base_url, token, run_id=context.run.run_id)
        totals = {
            s.table: row_count_metadata(conn, f"raw.{s.table}", "rows_in_table") for s in SOURCES
        }
    for source in SOURCES:
        yield dg.MaterializeResult(
            asset_key=["raw", source.table],
            metadata={
                "received": dg.MetadataValue.int(received.get(source.table, 0)),
                **totals[source.table],
            },
        )


merchant_systems_schedule = dg.ScheduleDefinition(
    name="merchant_systems_schedule",
    target=dg.AssetSelection.assets(*MERCHANT_SYSTEMS_KEYS),
    cron_schedule="*/10 * * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Pull the merchant systems every 10 minutes.",
    tags=SCHEDULED_PULL_TAGS,
)
