"""`ops/routing_decisions`: where each paid order ships from (智能分单), between the two dbt ops."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.resources import ChannelsResource, WarehouseResource

ROUTING_INPUTS = [
    dg.AssetKey(["intermediate", "int_orders_awaiting_allocation"]),
    dg.AssetKey(["intermediate", "int_order_items"]),
    dg.AssetKey(["staging", "stg_merchant_systems__wms_stock"]),
    dg.AssetKey(["intermediate", "int_carrier_shipments"]),
    dg.AssetKey(["raw", "address_geo"]),
    # orders held for review are not routed until a reviewer releases them
    dg.AssetKey(["ops", "risk_assessments"]),
    # and an escalated buyer's new orders until the CS ticket closes (cs_holds)
    dg.AssetKey(["ops", "review_queue"]),
    # a merge group's orders route together (one warehouse, one carrier, one parcel)
    dg.AssetKey(["ops", "merge_candidates"]),
]


class RoutingConfig(dg.Config):
    """Which rule file decides (default config/routing.yaml)."""

    rules_path: str | None = None


@dg.asset(
    key=["ops", "routing_decisions"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=ROUTING_INPUTS,
    description=(
        "One decision per paid order awaiting allocation: ship (warehouse, carrier), split or "
        "manual_review, with the deciding rule, its score and evidence (inputs), the delivery "
        "promise and the rule file's version. Rules: config/routing.yaml. Orders whose inputs "
        "did not change keep their decision. New allocations are sent to the merchant's WMS."
    ),
    code_version=source_version(
        __name__,
        "fulfillment.routing",
        "fulfillment.routing_store",
        "fulfillment.routing_rules",
        "fulfillment.promise",
        "fulfillment.merged_routing",
    ),
    automation_condition=keep_current(),
)
def routing_decisions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    channels: ChannelsResource,
    config: RoutingConfig,
) -> dg.MaterializeResult:
    from fulfillment.routing_rules import load_routing_rules
    from fulfillment.routing_store import decide_routing

    rules = load_routing_rules(config.rules_path)
    with warehouse.connect() as conn:
        report = decide_routing(conn, rules, datetime.now(UTC))
        wms = _send_to_wms(context, conn, channels)
        total, by_rule = conn.execute(
            "select coalesce(sum(n), 0), coalesce(jsonb_object_agg(rule, n), '{}') from ("
            "select rule, count(*) n from ops.routing_decisions group by rule) r"
        ).fetchone()
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "decided_this_run": dg.MetadataValue.int(report.decided),
        "decided_by_rule_this_run": dg.MetadataValue.json(report.by_rule),
        "decisions_this_run": dg.MetadataValue.json(report.by_decision),
        "all_decisions_by_rule": dg.MetadataValue.json(by_rule),
        "circuit_breaker_alerts": dg.MetadataValue.int(report.alerts),
        "routed_with_merge_group_this_run": dg.MetadataValue.int(report.merged),
        "config_version": rules.version,
        "sent_to_wms": dg.MetadataValue.json(wms),
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)


def _send_to_wms(context: dg.AssetExecutionContext, conn, channels: ChannelsResource) -> dict:
    """Tell the merchant's WMS about the allocations it has not heard of; what it refuses is
    recorded on the decision (`wms_status`), never retried blindly."""
    from connectors.credentials import CredentialsError
    from connectors.merchant_systems import merchant_systems_endpoint, send_allocations
    from fulfillment.routing_store import mark_sent, unsent_allocations

    allocations = unsent_allocations(conn)
    if not allocations:
        return {"sent": 0}
    try:
        base_url, token = merchant_systems_endpoint(channels.sandbox_file)
    except CredentialsError as exc:
        context.log.warning(f"allocations not sent to the WMS: {exc}")
        return {"sent": 0, "not_configured": str(exc)}
    answer = send_allocations(base_url, token, allocations)
    rejected = {r["platform_order_no"]: r["reason"] for r in answer.rejected or []}
    mark_sent(conn, allocations, rejected, datetime.now(UTC))
    return answer.as_dict()
