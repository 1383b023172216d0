"""The dbt domain: the two dbt ops, the nightly full data-test job and its schedule."""

from __future__ import annotations

import dagster as dg

from orchestration.conventions import SCHEDULE_TIMEZONE
from orchestration.dbt.assets import build_dbt_assets, build_dbt_full_tests_job

dbt_defs = build_dbt_assets()
dbt_full_tests_job = build_dbt_full_tests_job(dbt_defs)

defs = dg.Definitions(
    assets=dbt_defs,
    jobs=[dbt_full_tests_job],
    schedules=[
        dg.ScheduleDefinition(
            name="dbt_full_data_tests_schedule",
            job=dbt_full_tests_job,
            cron_schedule="0 4 * * *",
            execution_timezone=SCHEDULE_TIMEZONE,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    ],
)
