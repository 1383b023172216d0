"""Every dbt model is a Dagster asset and every dbt test an asset check."""

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


@dbt_assets(
    manifest=ensure_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    name="orderpulse_dbt_models",
)
def orderpulse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """dbt build of the selected models, with their tests as asset checks."""
    os.environ.update(warehouse.dbt_env())
    yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()
