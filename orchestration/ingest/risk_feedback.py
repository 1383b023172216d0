"""Chargebacks and audit verdicts on shipped orders from the merchant systems into raw: the
verdicts on orders that passed review, which `ops/risk_model` learns from."""

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS
from orchestration.resources import ChannelsResource, WarehouseResource
from orchestration.threaded_executor import LOAD_OP_TAGS


@dg.asset(
    key=["raw", "risk_feedback"],
    group_name="ingest",
    owners=OWNERS,
    kinds={"python", "postgres"},
    description=(
        "raw.risk_feedback from the merchant systems' API (GET /risk/feedback): platform "
        "chargebacks and disputes (fraud, coupon clawbacks) and after-the-fact audit verdicts "
        "of shipped orders; incremental by reported_at, checked at the edge, upserted by "
        "feedback_id. Pulled before each retrain of ops/risk_model."
    ),
    code_version=source_version("connectors.risk_feedback", __name__),
    op_tags=LOAD_OP_TAGS,
)
def risk_feedback(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, channels: ChannelsResource
) -> dg.MaterializeResult:
    from connectors.merchant_systems import merchant_systems_endpoint
    from connectors.risk_feedback import ingest_risk_feedback

    base_url, token = merchant_systems_endpoint(channels.sandbox_file)
    with warehouse.connect() as conn:
        stats = ingest_risk_feedback(conn, base_url, token, run_id=context.run.run_id)
        by_kind = dict(
            conn.execute(
                "select kind || ':' || verdict, count(*) from raw.risk_feedback group by 1 "
                "order by 1"
            ).fetchall()
        )
    return dg.MaterializeResult(
        metadata={
            "received": dg.MetadataValue.int(stats.received),
            "inserted": dg.MetadataValue.int(stats.inserted),
            "updated": dg.MetadataValue.int(stats.updated),
            "rejected": dg.MetadataValue.int(stats.rejected),
            "rows_in_table": dg.MetadataValue.int(sum(by_kind.values())),
            "by_kind_and_verdict": dg.MetadataValue.json(by_kind),
        }
    )
