"""`ops/merge_candidates`: orders of one household within 30 minutes, across channels."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.fulfillment.inventory import InventoryConfig
from orchestration.resources import WarehouseResource


@dg.asset(
    key=["ops", "merge_candidates"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=[dg.AssetKey(["intermediate", "int_orders"])],
    description=(
        "Merge candidates for review: same receiver phone and address, each order within 30 "
        "minutes of the previous (config/inventory.yaml), across channels; never cancelled, "
        "refunded or review-held orders. One group id per household chain, with the reason."
    ),
    code_version=source_version(__name__, "fulfillment.merges", "fulfillment.inventory_rules"),
    automation_condition=keep_current(),
)
def merge_candidates(warehouse: WarehouseResource, config: InventoryConfig) -> dg.MaterializeResult:
    from fulfillment.inventory_rules import load_inventory_rules
    from fulfillment.merges import write_merge_candidates

    rules = load_inventory_rules(config.rules_path)
    with warehouse.connect() as conn:
        report = write_merge_candidates(conn, rules, datetime.now(UTC))
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(report.orders),
        "groups": dg.MetadataValue.int(report.groups),
        "cross_channel_groups": dg.MetadataValue.int(report.cross_channel_groups),
        "rows_written_this_run": dg.MetadataValue.int(report.written),
        "rows_removed_this_run": dg.MetadataValue.int(report.removed),
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)
