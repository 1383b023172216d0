"""Channels without an API: SFTP exports, the H5 mall/ERP view and the POS drop folder.

Each lands in `raw/<channel>_orders` through the shared raw loader; a sensor per SFTP source
and for the POS drop folder starts a run when a new or changed file appears, and a schedule
pulls the DB bridge."""

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from connectors.channels_config import load_channels
from orchestration.ingest.assets import (
    channel_schedule,
    load_run_selection,
    orders_asset,
)
from orchestration.resources import ChannelsResource, WarehouseResource

# Dagster never runs a run key twice, and a failed load leaves its files pending under the same
# signature: the key carries a retry window, so files still pending are asked for again once per
# window (never while a load of this sensor is queued or running)
RETRY_WINDOW_SECONDS = 900
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]  # fmt: skip


def pending_run_request(
    context: dg.SensorEvaluationContext, sensor: str, signature: str, now: float
) -> dg.RunRequest | dg.SkipReason:
    """A run for the pending files `signature`, unless a load `sensor` started is under way."""
    active = context.instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/sensor_name": sensor}, statuses=_ACTIVE),
        limit=1,
    )
    if active:
        return dg.SkipReason(f"files pending; run {active[0].run_id[:8]} is loading them")
    window = int(now // RETRY_WINDOW_SECONDS)
    return dg.RunRequest(run_key=f"{signature}@{window}")


def _file_report_metadata(reports) -> dict:
    return {
        "files": dg.MetadataValue.int(len(reports)),
        "rows_loaded": dg.MetadataValue.int(sum(r.rows_loaded for r in reports)),
        "rows_rejected": dg.MetadataValue.int(sum(r.rows_rejected for r in reports)),
        "encodings": ", ".join(sorted({r.encoding for r in reports if r.encoding})) or "-",
        "files_detail": dg.MetadataValue.json([r.as_metadata() for r in reports]),
    }


def _fail_if_failed(channel: str, reports) -> None:
    failed = [r for r in reports if not r.ok]
    if failed:
        names = "; ".join(f"{Path(r.file).name}: {r.error}" for r in failed)
        raise dg.Failure(
            description=f"{channel}: {len(failed)} unreadable file(s), others loaded: {names}",
        )


def build_sftp_asset(channel: str) -> dg.AssetsDefinition:
    @orders_asset(
        channel,
        f"{channel} daily order exports (order_YYYYMMDD.csv, UTF-8/BOM/GBK, Chinese headers) "
        f"from the SFTP drop; new or changed files only, bad rows to raw.rejected_rows.",
        kinds=("python", "postgres"),
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, channels: ChannelsResource
    ) -> dg.MaterializeResult:
        from connectors.sftp import resolve_credentials, sync_source

        creds = resolve_credentials(channel, channels.sandbox_file)
        with warehouse.connect() as conn:
            report = sync_source(conn, channel, creds=creds, run_id=context.run.run_id)
        _fail_if_failed(channel, report.files)
        meta = {k: v for k, v in report.as_metadata().items() if v is not None}
        return dg.MaterializeResult(metadata={**meta, **_file_report_metadata(report.files)})

    return _asset


def build_sftp_sensor(channel: str, clock: Callable[[], float] = time.time) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{channel}_sftp_sensor",
        target=load_run_selection(channel),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts a {channel} load when a new or changed export appears on SFTP.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext,
        warehouse: WarehouseResource,
        channels: ChannelsResource,
    ):
        from connectors.sftp import pending_files, resolve_credentials

        creds = resolve_credentials(channel, channels.sandbox_file)
        with warehouse.connect() as conn:
            files = pending_files(conn, channel, creds=creds)
        if not files:
            return dg.SkipReason("no new or changed files")
        signature = "|".join(sorted(f.signature for f in files))
        return pending_run_request(context, f"{channel}_sftp_sensor", signature, clock())

    return _sensor


def build_db_bridge_asset(channel: str) -> dg.AssetsDefinition:
    @orders_asset(
        channel,
        f"{channel} orders read from the merchant's read-only SQL view, incrementally by its "
        "updated-at column, in chunks (cursor committed with each chunk).",
        kinds=("python", "postgres", "sqlalchemy"),
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, channels: ChannelsResource
    ) -> dg.MaterializeResult:
        from connectors.db_bridge import pull_source, resolve_url

        url = resolve_url(channel, channels.sandbox_file)
        with warehouse.connect() as conn:
            report = pull_source(conn, channel, url=url, run_id=context.run.run_id)
        meta = {k: v for k, v in report.as_metadata().items() if v is not None}
        return dg.MaterializeResult(metadata=meta)

    return _asset


def build_file_drop_asset(channel: str) -> dg.AssetsDefinition:
    @orders_asset(
        channel,
        f"{channel} orders from the import template (CSV/XLSX) dropped in "
        f"ORDERPULSE_HOME/drop/{channel}; see config/templates/.",
        kinds=("python", "postgres"),
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, channels: ChannelsResource
    ) -> dg.MaterializeResult:
        from connectors.file_drop import load_drop_folder

        folder = Path(channels.home) / "drop" / channel
        folder.mkdir(parents=True, exist_ok=True)
        with warehouse.connect() as conn:
            reports = load_drop_folder(conn, channel, folder=folder, run_id=context.run.run_id)
        _fail_if_failed(channel, reports)
        return dg.MaterializeResult(
            metadata={"folder": str(folder), **_file_report_metadata(reports)}
        )

    return _asset


def build_file_drop_sensor(
    channel: str, clock: Callable[[], float] = time.time
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{channel}_drop_folder_sensor",
        target=load_run_selection(channel),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts a {channel} load when a file lands in its drop folder.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext,
        warehouse: WarehouseResource,
        channels: ChannelsResource,
    ):
        from connectors.file_drop import pending_files

        folder = Path(channels.home) / "drop" / channel
        with warehouse.connect() as conn:
            files = pending_files(conn, channel, folder=folder)
        if not files:
            return dg.SkipReason("no new files")
        signature = "|".join(f.signature for f in files)
        return pending_run_request(context, f"{channel}_drop_folder_sensor", signature, clock())

    return _sensor


def file_and_db_assets() -> list[dg.AssetsDefinition]:
    channels = load_channels()
    return [
        *(build_sftp_asset(c) for c in channels.of_kind("sftp")),
        *(build_db_bridge_asset(c) for c in channels.of_kind("db_bridge")),
        *(build_file_drop_asset(c) for c in channels.of_kind("file_drop")),
    ]


def file_sensors() -> list[dg.SensorDefinition]:
    channels = load_channels()
    return [
        *(build_sftp_sensor(c) for c in channels.of_kind("sftp")),
        *(build_file_drop_sensor(c) for c in channels.of_kind("file_drop")),
    ]


def db_bridge_schedules() -> list[dg.ScheduleDefinition]:
    return [
        channel_schedule(channel, cfg.schedule, f"Pull {channel} from its SQL view")
        for channel, cfg in load_channels().of_kind("db_bridge").items()
    ]
