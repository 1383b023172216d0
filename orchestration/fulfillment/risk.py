"""`ops/risk_assessments`: risk interception (风控) of every paid order awaiting allocation,
between the two dbt ops; the held orders go to `ops.review_queue`. The rules decide, with the
newest learned model of `ops.risk_models` beside them when `ops/risk_model` has trained one."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.resources import WarehouseResource

RISK_INPUTS = [
    dg.AssetKey(["intermediate", "int_orders_awaiting_allocation"]),
    dg.AssetKey(["intermediate", "int_orders"]),
    dg.AssetKey(["intermediate", "int_behaviour_events"]),
]


class RiskConfig(dg.Config):
    """Which rule file decides (default config/risk.yaml)."""

    rules_path: str | None = None


@dg.asset(
    key=["ops", "risk_assessments"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=RISK_INPUTS,
    description=(
        "One risk assessment per paid order awaiting allocation: a score 0-100 and the signals "
        "that fired with their evidence (validation, behaviour, coupon abuse, cross-border "
        "customs). Orders above the review threshold, or without customs data, are queued in "
        "ops.review_queue with a 72 h hold; a reviewer's decision is never overwritten. Rules: "
        "config/risk.yaml. With a learned model (ops/risk_model, stored in ops.risk_models) the "
        "score is the larger of the rules' and the model's, and the model also holds orders "
        "above its threshold; each row records the model version that scored it (null: the "
        "rules alone). Orders whose inputs and evidence did not change keep their assessment."
    ),
    code_version=source_version(
        __name__,
        "fulfillment.risk",
        "fulfillment.risk_store",
        "fulfillment.risk_rules",
        "fulfillment.risk_model",
        "fulfillment.risk_model_store",
    ),
    automation_condition=keep_current(),
)
def risk_assessments(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config: RiskConfig
) -> dg.MaterializeResult:
    from fulfillment.risk_model_store import load_current_model
    from fulfillment.risk_rules import load_risk_rules
    from fulfillment.risk_store import decide_risk

    rules = load_risk_rules(config.rules_path)
    with warehouse.connect() as conn:
        unusable = None
        try:
            model = load_current_model(conn)
        except Exception as err:  # noqa: BLE001 (an unreadable model must not stop risk)
            conn.rollback()
            model, unusable = None, f"{type(err).__name__}: {err}"
            context.log.error(f"stored risk model unusable, scoring with the rules alone: {err}")
        report = decide_risk(conn, rules, datetime.now(UTC), model=model)
        scored_by = {
            version or "rules alone": int(n)
            for version, n in conn.execute(
                "select model_version, count(*) from ops.risk_assessments group by 1 order by 1"
            ).fetchall()
        }
        total, held = conn.execute(
            "select count(*), count(*) filter (where score > %s) from ops.risk_assessments",
            [rules.review.threshold],
        ).fetchone()
        pending, released, intercepted = conn.execute(
            "select count(*) filter (where decision is null), "
            "count(*) filter (where decision = 'release'), "
            "count(*) filter (where decision = 'intercept') from ops.review_queue"
        ).fetchone()
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "candidates": dg.MetadataValue.int(report.candidates),
        "assessed_this_run": dg.MetadataValue.int(report.assessed),
        "queued_this_run": dg.MetadataValue.int(report.queued),
        "decisions_this_run": dg.MetadataValue.json(report.by_decision),
        "signals_this_run": dg.MetadataValue.json(report.by_signal),
        "above_threshold": dg.MetadataValue.int(int(held)),
        "review_queue": dg.MetadataValue.json(
            {"pending": int(pending), "released": int(released), "intercepted": int(intercepted)}
        ),
        "config_version": rules.version,
        # which model scored: this run, and every stored assessment
        "model_version": report.model_version
        or (
            f"none: rules alone (stored model unusable: {unusable})"
            if unusable
            else "none: rules alone (no model trained yet)"
        ),
        "held_by_model_this_run": dg.MetadataValue.int(report.held_by_model),
        "assessments_by_model": dg.MetadataValue.json(scored_by),
    }
    if report.examples is not None and len(report.examples):
        metadata["examples"] = dg.MetadataValue.md(report.examples.to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)
