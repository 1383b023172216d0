"""The ingest domain: one asset per channel plus the merchant's systems, their schedules, the
push and file sensors, and the nightly reconciliation checks."""

from __future__ import annotations

import dagster as dg

from orchestration.ingest.assets import marketplace_assets, marketplace_schedules
from orchestration.ingest.checks import (
    nightly_reconciliation_job,
    nightly_reconciliation_schedule,
    reconciliation_checks,
)
from orchestration.ingest.file_assets import db_bridge_schedules, file_and_db_assets, file_sensors
from orchestration.ingest.merchant_systems import merchant_systems, merchant_systems_schedule
from orchestration.ingest.risk_feedback import risk_feedback
from orchestration.ingest.sensors import push_jobs_and_sensors

push_jobs, push_sensors = push_jobs_and_sensors()

defs = dg.Definitions(
    assets=[*marketplace_assets(), *file_and_db_assets(), merchant_systems, risk_feedback],
    asset_checks=reconciliation_checks(),
    jobs=[nightly_reconciliation_job, *push_jobs],
    schedules=[
        *marketplace_schedules(),
        *db_bridge_schedules(),
        merchant_systems_schedule,
        nightly_reconciliation_schedule,
    ],
    sensors=[*push_sensors, *file_sensors()],
)
