"""`ops/inventory_locks`, `ops/pause_sale` and `ops/stock_reconciliation`: stock held for paid,
unshipped orders (oversold flagged, released on cancel/refund/shipment/expired hold), the SKUs to
stop selling (pushed to every platform's stock API with the locks' freezes), and the hourly
platform-vs-WMS reconciliation (a schedule; no automation: it reads six platforms' stock)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg

from kernel.database import missing_relations
from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, SCHEDULE_TIMEZONE, keep_current
from orchestration.readiness import skip_until_built
from orchestration.resources import ChannelsResource, WarehouseResource

log = logging.getLogger(__name__)
# a push after each pause-sale run stays cheap: few retries (the hourly run retries as pulls do)
PUSH_ATTEMPTS = 3

LOCK_INPUTS = [
    dg.AssetKey(["intermediate", "int_orders"]),
    dg.AssetKey(["intermediate", "int_order_items"]),
    dg.AssetKey(["intermediate", "int_order_fulfillment_status"]),
    dg.AssetKey(["intermediate", "int_order_fulfillment_events"]),
    dg.AssetKey(["staging", "stg_merchant_systems__wms_stock"]),
    dg.AssetKey(["ops", "routing_decisions"]),
]


# what the reconciliation reads that dbt builds (the ops tables it creates itself)
RECONCILIATION_READS = ("staging.stg_merchant_systems__wms_stock",)


class InventoryConfig(dg.Config):
    """Which rule file applies (default config/inventory.yaml)."""

    rules_path: str | None = None


@dg.asset(
    key=["ops", "inventory_locks"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=LOCK_INPUTS,
    description=(
        "One lock per open order line (paid, not shipped, cancelled, refunded or held past its "
        "review): the warehouse (WMS allocation, else routing, else provisional), the units and "
        "the state: locked, oversold (the WMS on-hand stock cannot cover it, first paid first "
        "served) or released with the reason. Routing counts only unlocked stock. A pass "
        "reads afresh only the orders changed since the last one (every order hourly)."
    ),
    code_version=source_version(
        __name__,
        "fulfillment.inventory_locks",
        "fulfillment.inventory_store",
        "fulfillment.inventory_rules",
    ),
    automation_condition=keep_current(),
)
def inventory_locks(warehouse: WarehouseResource, config: InventoryConfig) -> dg.MaterializeResult:
    from fulfillment.inventory_rules import load_inventory_rules
    from fulfillment.inventory_store import sync_inventory_locks

    rules = load_inventory_rules(config.rules_path)
    with warehouse.connect() as conn:
        report = sync_inventory_locks(conn, rules, datetime.now(UTC))
        total, by_state = conn.execute(
            "select coalesce(sum(n), 0), coalesce(jsonb_object_agg(state, n), '{}') from ("
            "select state, count(*) n from ops.inventory_locks group by state) s"
        ).fetchone()
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "open_lines": dg.MetadataValue.int(report.open_lines),
        "locked_lines": dg.MetadataValue.int(report.locked),
        "oversold_lines": dg.MetadataValue.int(report.oversold),
        "oversold_orders": dg.MetadataValue.int(report.oversold_orders),
        "rows_written_this_run": dg.MetadataValue.int(report.written),
        "released_this_run": dg.MetadataValue.json(report.released),
        "lines_by_warehouse_basis": dg.MetadataValue.json(report.by_basis),
        "all_rows_by_state": dg.MetadataValue.json(by_state),
        # what the pass read afresh: every order (and why), or the orders touched since the last
        "orders_read": dg.MetadataValue.text(
            f"every order ({report.whole_because})"
            if report.whole_because
            else f"{report.touched_orders} touched since the last pass"
        ),
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=["ops", "pause_sale"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=[dg.AssetKey(["staging", "stg_merchant_systems__wms_stock"]), inventory_locks],
    description=(
        "SKUs whose sellable stock over all warehouses (WMS on hand less the locks) is under "
        "their safety threshold (config/inventory.yaml: default 5, per-SKU overrides): sale "
        "stops on every platform. A restocked SKU comes off the list."
    ),
    code_version=source_version(
        __name__,
        "fulfillment.inventory_store",
        "fulfillment.inventory_rules",
        "fulfillment.inventory_platform_push",
        "connectors.platform_stock",
    ),
    automation_condition=keep_current(),
)
def pause_sale(
    warehouse: WarehouseResource, channels: ChannelsResource, config: InventoryConfig
) -> dg.MaterializeResult:
    from fulfillment.inventory_platform_push import push_platform_stock
    from fulfillment.inventory_rules import load_inventory_rules
    from fulfillment.inventory_store import sync_pause_sale

    rules = load_inventory_rules(config.rules_path)
    now = datetime.now(UTC)
    with warehouse.connect() as conn:
        report = sync_pause_sale(conn, rules, now)
        with stock_apis(channels, attempts=PUSH_ATTEMPTS) as (apis, skipped):
            pushed = push_platform_stock(conn, apis, now)
    for channel, error in pushed.errors.items():
        log.warning("pause-sale push to %s failed (the hourly reconciliation retries): %s",
                    channel, error)  # fmt: skip
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(report.paused),
        "paused_this_run": dg.MetadataValue.json(report.added[:50]),
        "lifted_this_run": dg.MetadataValue.json(report.lifted[:50]),
        "config_version": rules.version,
        "platform_push": dg.MetadataValue.json(
            {
                "freezes_changed": pushed.frozen,
                "paused": {c: v[:20] for c, v in pushed.paused.items() if v},
                "lifted": {c: v[:20] for c, v in pushed.lifted.items() if v},
                "calls": pushed.calls,
                "errors": pushed.errors,
                "skipped": skipped,
            }
        ),
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)


@contextmanager
def stock_apis(
    channels: ChannelsResource, attempts: int | None = None
) -> Iterator[tuple[dict, dict[str, str]]]:
    """(platform -> stock client, platform -> why it has none) for every enabled marketplace,
    on one HTTP pool. A platform without credentials (no env vars, no sandbox.json) is skipped."""
    from connectors.channels_config import marketplaces
    from connectors.credentials import load_credentials
    from connectors.http import make_http_client
    from connectors.platform_stock import STOCK_CLIENTS, build_stock_client

    http = make_http_client(
        timeout=channels.http_timeout_seconds, max_attempts=attempts or channels.max_attempts
    )
    apis: dict = {}
    skipped: dict[str, str] = {}
    try:
        for channel in marketplaces():
            if channel not in STOCK_CLIENTS:
                skipped[channel] = "no stock client"
                continue
            try:
                creds = load_credentials(channel, channels.sandbox_file)
            except (ValueError, OSError) as err:  # CredentialsError is a ValueError
                skipped[channel] = f"no credentials: {err}"
                continue
            apis[channel] = build_stock_client(channel, creds, http)
        yield apis, skipped
    finally:
        http.close()


@dg.asset(
    key=["ops", "stock_reconciliation"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=[dg.AssetKey(["staging", "stg_merchant_systems__wms_stock"]), inventory_locks, pause_sale],
    code_version=source_version(
        __name__,
        "fulfillment.stock_reconciliation",
        "fulfillment.inventory_platform_push",
        "fulfillment.inventory_rules",
        "connectors.platform_stock",
    ),
    description=(
        "Hourly platform-vs-WMS reconciliation: per SKU and platform, the units the platform's "
        "stock API shows on sale against the WMS's available units (on hand less the locks, all "
        "warehouses); a difference beyond the tolerance (config/inventory.yaml, 3) is a row. "
        "The current freezes and pauses are pushed first. Runs on its schedule only."
    ),
)
def stock_reconciliation(
    warehouse: WarehouseResource, channels: ChannelsResource, config: InventoryConfig
) -> dg.MaterializeResult:
    from fulfillment.inventory_rules import load_inventory_rules
    from fulfillment.stock_reconciliation import reconcile_stock

    rules = load_inventory_rules(config.rules_path)
    with warehouse.connect() as conn:
        missing = missing_relations(conn, RECONCILIATION_READS)
    if missing:
        raise dg.Failure(
            description=f"{', '.join(missing)} not built yet: materialise the dbt models first "
            "(the first full run of `orderpulse up` or `orderpulse demo` builds them)"
        )
    with warehouse.connect() as conn, stock_apis(channels) as (apis, skipped):
        report = reconcile_stock(conn, apis, rules, datetime.now(UTC))
        total = conn.execute("select count(*) from ops.stock_reconciliation").fetchone()[0]
    push = report.push
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "differences_by_platform": dg.MetadataValue.json(report.differences),
        "skus_compared_by_platform": dg.MetadataValue.json(report.compared),
        "tolerance": dg.MetadataValue.int(rules.reconciliation.tolerance),
        "push_calls": dg.MetadataValue.json(push.calls if push else {}),
        "skipped_platforms": dg.MetadataValue.json(skipped),
        "config_version": rules.version,
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    errors = {**(push.errors if push else {}), **report.errors}
    if errors:
        # the others were reconciled and written; the failed platforms keep their old rows
        raise dg.Failure(
            description=f"stock API of {', '.join(sorted(errors))} failed: {errors}",
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.schedule(
    name="stock_reconciliation_schedule",
    target=dg.AssetSelection.assets(stock_reconciliation),
    cron_schedule="5 * * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The platform-vs-WMS stock reconciliation, hourly at :05, once the WMS stock "
    "model is built.",
)
def stock_reconciliation_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    return skip_until_built(warehouse, RECONCILIATION_READS) or dg.RunRequest()
