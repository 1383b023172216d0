"""Every dbt model is a Dagster asset and every dbt test an asset check."""

import json
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.dbt.project import dbt_project, ensure_manifest
from orchestration.resources import WarehouseResource

OWNERS = ["team:data-engineering"]


class OrderPulseTranslator(DagsterDbtTranslator):
    """Models keyed `<schema>/<model>` and grouped by layer; sources keep `raw/<table>`, which
    are exactly the keys of the ingestion assets, so the graph joins up."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project):  # type: ignore[override]
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        if node.get("resource_type") in ("model", "seed", "snapshot"):
            schema = node.get("schema") or "marts"
            return spec.replace_attributes(
                key=dg.AssetKey([schema, node["name"]]),
                group_name=schema,
                owners=OWNERS,
                automation_condition=dg.AutomationCondition.eager(),
            ).merge_attributes(kinds={"postgres"})
        return spec


TRANSLATOR = OrderPulseTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=False)
)


MANIFEST_PATH = ensure_manifest(dbt_project)


def _table_relations(manifest_path) -> dict[dg.AssetKey, str]:
    """Asset key -> `schema.name` of every model dbt materialises as a table (views are not
    counted: counting one re-runs its whole query)."""
    manifest = json.loads(manifest_path.read_text())
    out = {}
    for node in manifest["nodes"].values():
        materialized = node.get("config", {}).get("materialized")
        if node.get("resource_type") == "model" and materialized in ("table", "incremental"):
            out[dg.AssetKey([node["schema"], node["name"]])] = (
                f'"{node["schema"]}"."{node["name"]}"'
            )
    return out


TABLES = _table_relations(MANIFEST_PATH)


def _with_row_count(event, conn):
    """Add `dagster/row_count` to a model's materialisation. Counted on the run's own
    connection by schema and name: the manifest's database name may differ from the target."""
    key = getattr(event, "asset_key", None)
    relation = TABLES.get(key) if key is not None else None
    if relation is None or not isinstance(event, dg.MaterializeResult | dg.Output):
        return event
    count = conn.execute(f"select count(*) from {relation}").fetchone()[0]
    meta = {**(event.metadata or {}), "dagster/row_count": dg.MetadataValue.int(count)}
    if isinstance(event, dg.Output):
        return event.with_metadata(meta)
    return event._replace(metadata=meta)


class DbtBuildConfig(dg.Config):
    """How a dbt run tests: by default a data test of an incremental model checks the rows this
    build wrote (dbt_project/macros/test_scope.sql); `test_all_rows` checks every row (the
    nightly job)."""

    test_all_rows: bool = False


def dbt_args(config: DbtBuildConfig, checks_only: bool = False) -> list[str]:
    """`dbt build`, or `dbt test` when only checks are selected: in a build a failed test skips
    everything downstream of its model, tests included, and a test run should report them all."""
    args = ["test" if checks_only else "build"]
    if config.test_all_rows:
        args += ["--vars", json.dumps({"test_all_rows": True})]
    return args


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    name="orderpulse_dbt_models",
)
def orderpulse_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    """dbt build of the selected models, with their tests as asset checks."""
    os.environ.update(warehouse.dbt_env())
    with warehouse.connect() as conn:
        conn.autocommit = True
        checks_only = not context.selected_asset_keys
        for event in dbt.cli(dbt_args(config, checks_only), context=context).stream():
            yield _with_row_count(event, conn)


# Every dbt data test over every row, nightly: the runs in between test only the rows each
# build wrote. Checks only, no model is rebuilt.
dbt_full_tests_job = dg.define_asset_job(
    name="dbt_full_data_tests",
    selection=dg.AssetSelection.checks_for_assets(orderpulse_dbt_models),
    config={"ops": {"orderpulse_dbt_models": {"config": {"test_all_rows": True}}}},
    description="Every dbt data test over every row (incremental builds test the rows they wrote).",
)

dbt_full_tests_schedule = dg.ScheduleDefinition(
    name="dbt_full_data_tests_schedule",
    job=dbt_full_tests_job,
    cron_schedule="0 4 * * *",
    execution_timezone="Asia/Shanghai",
)
