"""`ops/review_queue`: the CS escalation holds (an escalated buyer's new paid orders wait until
the ticket closes), after risk's holds and before routing."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.resources import WarehouseResource

CS_HOLD_INPUTS = [
    dg.AssetKey(["staging", "stg_merchant_systems__cs_tickets"]),
    dg.AssetKey(["intermediate", "int_orders"]),
    dg.AssetKey(["intermediate", "int_orders_awaiting_allocation"]),
    # risk writes the same queue first (one writer at a time: its advisory lock)
    dg.AssetKey(["ops", "risk_assessments"]),
]


class CsHoldConfig(dg.Config):
    """Which alert rule file holds the escalation criterion (default config/alerts.yaml)."""

    rules_path: str | None = None


@dg.asset(
    key=["ops", "review_queue"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "postgres"},
    deps=CS_HOLD_INPUTS,
    description=(
        "The review queue's CS holds: while an order escalated to the CS lead (asked about 3+ "
        "times, or complaint words 投诉/工商局/12315/差评 twice: the cs_escalation rule) has "
        "an open ticket, every order its buyer paid after the escalation started is queued "
        "(hold_reason cs_escalation, evidence: the escalated order and its open tickets), so "
        "routing leaves it alone. When the tickets close the hold is released by 'system', "
        "unless a reviewer decided or risk holds the order too. Risk's own holds are written "
        "by ops/risk_assessments. Rules: config/alerts.yaml rules.cs_escalation.params."
    ),
    code_version=source_version(
        __name__, "fulfillment.cs_holds", "quality.cs_escalation", "fulfillment.ops_schema"
    ),
    automation_condition=keep_current(),
)
def review_queue(warehouse: WarehouseResource, config: CsHoldConfig) -> dg.MaterializeResult:
    from pathlib import Path

    from fulfillment.cs_holds import HOLD_REASON, SYSTEM_REVIEWER, hold_escalated_buyers
    from quality.alert_rules import load_alert_config

    rules = load_alert_config(Path(config.rules_path) if config.rules_path else None)
    with warehouse.connect() as conn:
        report = hold_escalated_buyers(conn, rules.rule("cs_escalation").params, datetime.now(UTC))
        total = conn.execute("select count(*) from ops.review_queue").fetchone()[0]
        pending = conn.execute(
            "select hold_reason, count(*) from ops.review_queue where decision is null "
            "group by 1 order by 1"
        ).fetchall()
        released_by_system = conn.execute(
            "select count(*) from ops.review_queue where hold_reason = %s and reviewer = %s",
            [HOLD_REASON, SYSTEM_REVIEWER],
        ).fetchone()[0]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "open_escalations": dg.MetadataValue.int(report.escalations_open),
        "held_this_run": dg.MetadataValue.int(report.held),
        "released_this_run": dg.MetadataValue.int(report.released),
        "cs_holds_pending": dg.MetadataValue.int(report.holding),
        "cs_holds_released_by_system": dg.MetadataValue.int(int(released_by_system)),
        "pending_by_reason": dg.MetadataValue.json({r: int(n) for r, n in pending}),
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)
