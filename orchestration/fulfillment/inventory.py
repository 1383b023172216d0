"""`ops/inventory_locks` and `ops/pause_sale`: stock held for paid, unshipped orders (oversold
flagged, released on cancel/refund/shipment/expired hold), and the SKUs to stop selling."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.resources import WarehouseResource

LOCK_INPUTS = [
    dg.AssetKey(["intermediate", "int_orders"]),
    dg.AssetKey(["intermediate", "int_order_items_unioned"]),
    dg.AssetKey(["intermediate", "int_order_fulfillment_status"]),
    dg.AssetKey(["intermediate", "int_order_fulfillment_events"]),
    dg.AssetKey(["staging", "stg_merchant_systems__wms_stock"]),
    dg.AssetKey(["ops", "routing_decisions"]),
]


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
        "served) or released with the reason. Routing counts only unlocked stock."
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
        __name__, "fulfillment.inventory_store", "fulfillment.inventory_rules"
    ),
    automation_condition=keep_current(),
)
def pause_sale(warehouse: WarehouseResource, config: InventoryConfig) -> dg.MaterializeResult:
    from fulfillment.inventory_rules import load_inventory_rules
    from fulfillment.inventory_store import sync_pause_sale

    rules = load_inventory_rules(config.rules_path)
    with warehouse.connect() as conn:
        report = sync_pause_sale(conn, rules, datetime.now(UTC))
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(report.paused),
        "paused_this_run": dg.MetadataValue.json(report.added[:50]),
        "lifted_this_run": dg.MetadataValue.json(report.lifted[:50]),
        "config_version": rules.version,
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)
