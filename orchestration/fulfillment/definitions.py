"""The fulfillment domain: the Python steps between the two dbt ops. They read intermediate
models and write `raw.address_geo` and the `ops` decision tables, which the marts read."""

from __future__ import annotations

import dagster as dg

from orchestration.fulfillment.address_geo import address_geo
from orchestration.fulfillment.cs_holds import review_queue
from orchestration.fulfillment.inventory import (
    inventory_locks,
    pause_sale,
    stock_reconciliation,
    stock_reconciliation_schedule,
)
from orchestration.fulfillment.merges import merge_candidates
from orchestration.fulfillment.risk import risk_assessments
from orchestration.fulfillment.risk_model import risk_model, risk_model_weekly_schedule
from orchestration.fulfillment.routing import routing_decisions

defs = dg.Definitions(
    assets=[
        address_geo,
        routing_decisions,
        risk_assessments,
        risk_model,
        review_queue,
        inventory_locks,
        pause_sale,
        merge_candidates,
        stock_reconciliation,
    ],
    schedules=[stock_reconciliation_schedule, risk_model_weekly_schedule],
)
