"""The dbt domain: the two dbt ops, the nightly full data-test job and its schedule."""

from __future__ import annotations

import dagster as dg

from orchestration.conventions import SCHEDULE_TIMEZONE
from orchestration.dbt.assets import build_dbt_assets, build_dbt_full_tests_job
from orchestration.readiness import dbt_relations, skip_until_built
from orchestration.resources import WarehouseResource

dbt_defs = build_dbt_assets()
dbt_full_tests_job = build_dbt_full_tests_job(dbt_defs)


@dg.schedule(
    name="dbt_full_data_tests_schedule",
    job=dbt_full_tests_job,
    cron_schedule="0 4 * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every dbt data test over every row, nightly, once the warehouse is built.",
)
def dbt_full_data_tests_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    # tests of a model not built yet would fail: wait for the first full run
    return skip_until_built(warehouse, dbt_relations()) or dg.RunRequest()


defs = dg.Definitions(
    assets=dbt_defs,
    jobs=[dbt_full_tests_job],
    schedules=[dbt_full_data_tests_schedule],
)
