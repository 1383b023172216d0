"""`ops/risk_model`: retrains the learned risk score on the reviewers' decisions in the
warehouse (manually, or by its weekly schedule); `ops/risk_assessments`
scores with the newest stored model, or with the rules alone while there is none."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, SCHEDULE_TIMEZONE
from orchestration.fulfillment.risk import RiskConfig
from orchestration.readiness import skip_until_built
from orchestration.resources import WarehouseResource

RISK_MODEL_INPUTS = [
    dg.AssetKey(["intermediate", "int_orders"]),
    dg.AssetKey(["intermediate", "int_behaviour_events"]),
]
RISK_FEEDBACK = dg.AssetKey(["raw", "risk_feedback"])


@dg.asset(
    key=["ops", "risk_model"],
    group_name="fulfillment",
    owners=OWNERS,
    kinds={"python", "scikitlearn", "postgres"},
    deps=[*RISK_MODEL_INPUTS, RISK_FEEDBACK],
    description=(
        "The learned risk score, trained on the reviewers' decisions (ops.review_queue: "
        "intercept = bad, release = honest), the chargebacks and audit verdicts of shipped "
        "orders (raw.risk_feedback) and the order history, on orders whose label window "
        "(config/risk.yaml model.label_window_days) has closed; its threshold chosen on a "
        "later validation slice; stored versioned in ops.risk_models, used by "
        "ops/risk_assessments from its next run. With too few reviewed orders it trains "
        "nothing and says so: the rules alone keep deciding. Not automated: materialise it, "
        "or let risk_model_weekly_schedule pull the feedback and retrain it on Mondays."
    ),
    code_version=source_version(
        __name__, "fulfillment.risk_model", "fulfillment.risk_model_store", "fulfillment.risk"
    ),
)
def risk_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config: RiskConfig
) -> dg.MaterializeResult:
    from fulfillment.risk_model_store import (
        NotEnoughReviews,
        load_current_model,
        reviewed_counts,
        save_model,
        train_from_warehouse,
    )
    from fulfillment.risk_rules import load_risk_rules

    rules = load_risk_rules(config.rules_path)
    now = datetime.now(UTC)
    with warehouse.connect() as conn:
        counts = reviewed_counts(conn, rules, now)
        reviewed = {
            "reviewed": counts.reviewed,
            "intercepted": counts.intercepted,
            "released": counts.released,
        }
        try:
            trained = train_from_warehouse(conn, rules, now)
        except NotEnoughReviews as refused:
            current = load_current_model(conn)
            in_use = current.version if current is not None else "none: rules alone"
            context.log.warning(f"no model trained: {refused}")
            return dg.MaterializeResult(
                metadata={
                    "trained": False,
                    "reason": str(refused),
                    "reviewed_orders": dg.MetadataValue.json(reviewed),
                    "model_in_use": in_use,
                }
            )
        version = save_model(conn, trained, now)
    model = trained.model
    figures = {k: round(float(v), 4) for k, v in model.validation.items()}
    return dg.MaterializeResult(
        metadata={
            "trained": True,
            "model_version": version,
            "threshold": dg.MetadataValue.float(model.threshold),
            "training_window": dg.MetadataValue.json(list(model.window)),
            "training_orders": dg.MetadataValue.int(trained.orders),
            "reviewed_orders": dg.MetadataValue.json(reviewed),
            "validation_rules_and_model": dg.MetadataValue.json(figures),
            # the window, where the label window closed, the verdicts by source
            "trained_on": dg.MetadataValue.json(trained.labels),
            "model_in_use": version,
        }
    )


@dg.schedule(
    name="risk_model_weekly_schedule",
    target=dg.AssetSelection.assets(RISK_FEEDBACK, risk_model),
    cron_schedule="0 4 * * 1",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Pulls the chargebacks and audits, then retrains the learned risk score on "
    "them and the reviewers' decisions, Mondays 04:00 Beijing, once the warehouse is built; "
    "with too few reviewed orders the run trains nothing and says so (the rules alone keep "
    "deciding).",
)
def risk_model_weekly_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    reads = [".".join(key.path) for key in RISK_MODEL_INPUTS]
    return skip_until_built(warehouse, reads) or dg.RunRequest()
