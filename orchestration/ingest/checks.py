"""Nightly reconciliation: re-pull the last 24 h of each marketplace and count what the
incremental pulls had missed. Zero is the only passing figure."""

import dagster as dg

from connectors.channels_config import ChannelConfig, load_channels
from orchestration.conventions import SCHEDULE_TIMEZONE
from orchestration.ingest.assets import RECONCILIATION_CHECK, orders_asset_key
from orchestration.resources import ChannelsResource, WarehouseResource


def build_reconciliation_check(channel: str, cfg: ChannelConfig) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=orders_asset_key(channel),
        name=RECONCILIATION_CHECK,
        description=(
            f"Re-pulls the last 24 h of {channel} and fails when any order was missing from "
            "raw (or older there) before the re-pull; the re-pull also repairs it."
        ),
        blocking=False,
    )
    def _check(warehouse: WarehouseResource, channels: ChannelsResource) -> dg.AssetCheckResult:
        from connectors.reconcile import reconcile_channel

        with warehouse.connect() as conn, channels.open_client(channel, cfg) as client:
            report = reconcile_channel(conn, client, hours=24)
        meta = {k: v for k, v in report.as_metadata().items() if v is not None}
        return dg.AssetCheckResult(
            passed=report.missed == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=meta,
            description=f"{report.missed} orders missed by the incremental pulls",
        )

    return _check


def reconciliation_checks() -> list[dg.AssetChecksDefinition]:
    return [
        build_reconciliation_check(channel, cfg)
        for channel, cfg in load_channels().of_kind("marketplace").items()
    ]


nightly_reconciliation_job = dg.define_asset_job(
    name="nightly_reconciliation",
    selection=dg.AssetSelection.checks_for_assets(
        *[orders_asset_key(c) for c in load_channels().of_kind("marketplace")]
    ),
    description="The 24 h re-pull of every marketplace (asset checks only).",
)

nightly_reconciliation_schedule = dg.ScheduleDefinition(
    name="nightly_reconciliation_schedule",
    job=nightly_reconciliation_job,
    cron_schedule="30 3 * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
