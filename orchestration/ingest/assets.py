"""One ingestion asset per marketplace channel: `raw/<channel>_orders` in group `ingest`."""

import importlib.util
import logging
from collections.abc import Callable
from datetime import timedelta

import dagster as dg
from dagster._core.storage.tags import PRIORITY_TAG

from connectors.channels_config import ChannelConfig, load_channels
from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, SCHEDULE_TIMEZONE, SCHEDULED_PULL_TAGS
from orchestration.ingest.freshness import channel_freshness_policy
from orchestration.resources import ChannelsResource, WarehouseResource
from orchestration.row_counts import row_count_metadata
from orchestration.threaded_executor import LOAD_OP_TAGS, PULL_OP_TAGS


class IngestConfig(dg.Config):
    """Run config of an ingestion asset. Leave empty for the normal incremental pull."""

    backfill_days: int | None = None
    """Walk this many days back regardless of the cursor (a backfill), showing progress."""

    order_nos: list[str] = []
    """Fetch just these orders (detail calls), as the push sensor asks; no window walk."""

    webhook_event_ids: list[int] = []
    """raw.webhook_events rows this run answers; marked processed once their orders are loaded."""


def orders_asset_key(channel: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", f"{channel}_orders"])


# The connector modules whose logic each kind of channel runs (for the code version).
CONNECTOR_MODULES = {
    "marketplace": (
        "connectors.ingest",
        "connectors.push_load",
        "connectors.marketplace",
        "connectors.raw_loader",
    ),
    "sftp": ("connectors.sftp", "connectors.csv_orders", "connectors.raw_loader"),
    "db_bridge": ("connectors.db_bridge", "connectors.raw_loader"),
    "file_drop": ("connectors.file_drop", "connectors.csv_orders", "connectors.raw_loader"),
}


def _client_module(channel: str, cfg: ChannelConfig) -> tuple[str, ...]:
    """A marketplace's own client (signing, paging): connectors/<channel>.py where it exists."""
    if cfg.kind != "marketplace" or importlib.util.find_spec(f"connectors.{channel}") is None:
        return ()
    return (f"connectors.{channel}",)


def orders_asset(
    channel: str,
    description: str,
    *,
    kinds=("python", "postgres"),
    op_tags: dict[str, str] = LOAD_OP_TAGS,
    **extra,
) -> Callable[..., dg.AssetsDefinition]:
    """`@dg.asset` for `raw/<channel>_orders`: every source's asset looks alike in the UI, with
    a freshness policy from the channel's cadence and a code version from its connector."""
    cfg = load_channels().channels[channel]
    return dg.asset(
        key=orders_asset_key(channel),
        group_name="ingest",
        owners=OWNERS,
        kinds=set(kinds),
        description=description,
        tags={"channel": channel},
        op_tags=op_tags,
        metadata={"channel": channel, "table": f"raw.{channel}_orders"},
        freshness_policy=channel_freshness_policy(cfg),
        code_version=source_version(*CONNECTOR_MODULES[cfg.kind], *_client_module(channel, cfg)),
        **extra,
    )


# The nightly 24 h re-pull (orchestration/ingest/checks.py) runs in its own job only: as a check
# of the raw asset it would otherwise join every scheduled pull, push run and full run, and
# re-read a day of orders each time.
RECONCILIATION_CHECK = "no_orders_missed_last_24h"


def without_nightly_checks(selection: dg.AssetSelection) -> dg.AssetSelection:
    """`selection` less the marketplaces' nightly re-pull checks."""
    keys = [
        dg.AssetCheckKey(orders_asset_key(channel), RECONCILIATION_CHECK)
        for channel in load_channels().of_kind("marketplace")
    ]
    return selection - dg.AssetSelection.checks(*keys)


# Each raw table's volume check (row count against the previous check's, the newest row's age)
# runs hourly in a job of its own (`raw_volume_checks`, orchestration/quality): as a check of
# the raw asset it rode with every pull and imported Great Expectations there (6.5 s on an idle
# 2-core host) even when the pull found nothing new, as most scheduled pulls do in live mode.
VOLUME_CHECK = "gx_raw_orders_volume"


def load_run_selection(channel: str) -> dg.AssetSelection:
    """What a run that loads `channel` executes (its schedule, its push or file sensor): the raw
    asset and the checks of the rows it loaded, less the nightly re-pull and the hourly volume
    check."""
    key = orders_asset_key(channel)
    volume = dg.AssetSelection.checks(dg.AssetCheckKey(key, VOLUME_CHECK))
    return without_nightly_checks(dg.AssetSelection.assets(key)) - volume


def channel_schedule(channel: str, cron: str | None, what: str) -> dg.ScheduleDefinition:
    """The schedule of `raw/<channel>_orders` (Beijing time, cron from config/channels.yaml)."""
    return dg.ScheduleDefinition(
        name=f"{channel}_orders_schedule",
        target=load_run_selection(channel),
        cron_schedule=cron or "*/10 * * * *",
        execution_timezone=SCHEDULE_TIMEZONE,
        # live mode is the product: a running daemon keeps every channel current
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{what} on the cadence set in config/channels.yaml.",
        tags=SCHEDULED_PULL_TAGS,
    )


def _pull_priority(channel: str) -> int:
    """Marketplaces are pulled in the order config/channels.yaml lists them, two at a time: the
    first listed (the busiest) start first, so that a run's last pull, and its checks before
    dbt, are small ones."""
    listed = list(load_channels().of_kind("marketplace"))
    return len(listed) - listed.index(channel)


def build_marketplace_asset(channel: str, cfg: ChannelConfig) -> dg.AssetsDefinition:
    @orders_asset(
        channel,
        f"{channel} orders pulled incrementally from the platform's signed order API by "
        f"modified-time windows (overlap {cfg.lag_minutes} min), upserted into "
        f"raw.{channel}_orders with the full payload as JSONB.",
        pool="marketplace_api",
        op_tags={**PULL_OP_TAGS, PRIORITY_TAG: str(_pull_priority(channel))},
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        config: IngestConfig,
        warehouse: WarehouseResource,
        channels: ChannelsResource,
    ) -> dg.MaterializeResult:
        from connectors.pull_process import PullJob, pull_in_process
        from connectors.raw_schema import ensure_raw_tables

        # imported here: the checks module builds on these assets
        from orchestration.quality.expectation_checks import start_import_if_checked

        start_import_if_checked(context.run)  # overlaps the pull

        def progress(p) -> None:
            context.log.info(f"{channel}: {p}")

        with warehouse.connect() as conn:
            ensure_raw_tables(conn, [channel])
            if config.order_nos:  # a few orders, waited for: no process to start
                with channels.open_client(channel, cfg) as client:
                    return _load_pushed(context, conn, client, channel, config)
            # the pull in a process of its own (connectors/pull_process.py)
            job = PullJob(
                channel=channel,
                warehouse_url=warehouse.conn_facts.url(),
                sandbox_file=channels.sandbox_file,
                run_id=context.run.run_id,
                lag=timedelta(minutes=cfg.lag_minutes or 0),
                backfill_days=cfg.backfill_days or 3,
                days=config.backfill_days,
                page_size=cfg.page_size,
                http_timeout=channels.http_timeout_seconds,
                log_level=logging.getLogger().getEffectiveLevel(),
            )
            report = pull_in_process(job, on_progress=progress)
            total = row_count_metadata(conn, f"raw.{channel}_orders", "rows_in_table")
        meta = {k: v for k, v in report.as_metadata().items() if v is not None}
        return dg.MaterializeResult(metadata={**meta, **total})

    return _ingest


def _load_pushed(context, conn, client, channel: str, config: IngestConfig):
    """A push-triggered run: fetch the named orders and load them (no cursor move)."""
    from connectors.push_load import load_pushed_orders

    report = load_pushed_orders(
        conn, client, channel, config.order_nos, config.webhook_event_ids,
        run_id=context.run.run_id,
    )  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "trigger": "push",
            "order_nos": dg.MetadataValue.int(len(config.order_nos)),
            **report.stats.as_dict(),
        }
    )


def marketplace_assets() -> list[dg.AssetsDefinition]:
    return [
        build_marketplace_asset(channel, cfg)
        for channel, cfg in load_channels().of_kind("marketplace").items()
    ]


def marketplace_schedules() -> list[dg.ScheduleDefinition]:
    return [
        channel_schedule(channel, cfg.schedule, f"Pull {channel} orders")
        for channel, cfg in load_channels().of_kind("marketplace").items()
    ]
