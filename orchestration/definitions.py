"""The one `Definitions` of OrderPulse, assembled from the layer folders."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt.assets import (
    dbt_full_tests_job,
    dbt_full_tests_schedule,
    orderpulse_dbt_models,
)
from orchestration.dbt.project import dbt_project
from orchestration.enrichment.assets import address_geo
from orchestration.ingest.assets import marketplace_assets, marketplace_schedules
from orchestration.ingest.checks import (
    nightly_reconciliation_job,
    nightly_reconciliation_schedule,
    reconciliation_checks,
)
from orchestration.ingest.file_assets import (
    db_bridge_schedules,
    file_and_db_assets,
    file_sensors,
)
from orchestration.ingest.ops_assets import merchant_ops_systems, ops_schedule
from orchestration.ingest.sensors import push_jobs_and_sensors
from orchestration.reporting.assets import channel_order_summary
from orchestration.resources import ChannelsResource, WarehouseResource, dbt_executable

all_assets_job = dg.define_asset_job(
    name="orderpulse_full_run",
    selection=dg.AssetSelection.all(),
    description="Everything once: ingest every channel, dbt build, decisions and reports.",
)


automation_sensor = dg.AutomationConditionSensorDefinition(
    name="orderpulse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Keeps dbt models and downstream assets up to date as their sources change.",
)


def build_definitions() -> dg.Definitions:
    push_jobs, push_sensors = push_jobs_and_sensors()
    return dg.Definitions(
        assets=[
            *marketplace_assets(),
            *file_and_db_assets(),
            merchant_ops_systems,
            orderpulse_dbt_models,
            address_geo,
            channel_order_summary,
        ],
        asset_checks=reconciliation_checks(),
        jobs=[all_assets_job, nightly_reconciliation_job, dbt_full_tests_job, *push_jobs],
        schedules=[
            *marketplace_schedules(),
            nightly_reconciliation_schedule,
            dbt_full_tests_schedule,
            ops_schedule,
            *db_bridge_schedules(),
        ],
        sensors=[*push_sensors, *file_sensors(), automation_sensor],
        resources={
            "warehouse": WarehouseResource(pg_url=dg.EnvVar("ORDERPULSE_WAREHOUSE_URL")),
            "channels": ChannelsResource(home=dg.EnvVar("ORDERPULSE_HOME")),
            "dbt": DbtCliResource(
                project_dir=dbt_project,
                profiles_dir=str(dbt_project.profiles_dir),
                dbt_executable=dbt_executable(),
            ),
        },
    )


defs = build_definitions()
