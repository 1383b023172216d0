"""The one `Definitions` of OrderPulse: the domains' own Definitions merged, plus the shared
resources, the whole-graph job and the automation sensor.

Data flows one way: ingest → dbt (staging, intermediate) → fulfillment (enrichment and
decisions, writing `ops`) → dbt (int_order_status, marts) → reporting and quality.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import dagster as dg

from orchestration.conventions import (
    AUTOMATION_RUN_TAGS,
    built_when_its_code_changes,
    left_to_the_decision_worker,
    updated_through_views,
)
from orchestration.dbt import definitions as dbt_domain
from orchestration.dbt.assets import longest_chain, view_parents
from orchestration.dbt.project import dbt_project, load_manifest
from orchestration.decision_worker import build_live_decisions_job, decision_worker_enabled
from orchestration.fulfillment import definitions as fulfillment_domain
from orchestration.ingest import definitions as ingest_domain
from orchestration.ingest.assets import without_nightly_checks
from orchestration.quality import definitions as quality_domain
from orchestration.reporting import definitions as reporting_domain
from orchestration.resources import (
    ChannelsResource,
    DbtResource,
    WarehouseResource,
    dbt_executable,
)
from orchestration.threaded_executor import threaded_executor

all_assets_job = dg.define_asset_job(
    name="orderpulse_full_run",
    selection=without_nightly_checks(dg.AssetSelection.all()),
    description="Everything once: ingest every channel, dbt build, decisions and reports (the "
    "nightly 24 h re-pull checks run in their own job).",
)

live_decisions_job = build_live_decisions_job()

automation_sensor = dg.AutomationConditionSensorDefinition(
    name="orderpulse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=AUTOMATION_RUN_TAGS,
    description="Keeps dbt models, decisions and reports current as their sources change.",
)

shared = dg.Definitions(
    jobs=[all_assets_job, live_decisions_job],
    # One process per run: a step process pays seconds to import Dagster and load these
    # definitions (a minute per step seen on a busy 2-core host), which dominates the small
    # runs that live mode makes. Steps whose inputs are ready run side by side on threads.
    executor=threaded_executor,
    sensors=[automation_sensor],
    resources={
        "warehouse": WarehouseResource(pg_url=dg.EnvVar("ORDERPULSE_WAREHOUSE_URL")),
        "channels": ChannelsResource(home=dg.EnvVar("ORDERPULSE_HOME")),
        "dbt": DbtResource(
            project_dir=dbt_project,
            profiles_dir=str(dbt_project.profiles_dir),
            dbt_executable=dbt_executable(),
        ),
    },
)

defs = dg.Definitions.merge(
    ingest_domain.defs,
    dbt_domain.defs,
    fulfillment_domain.defs,
    reporting_domain.defs,
    quality_domain.defs,
    shared,
)


def _views_left_alone() -> tuple[dg.AssetSelection, int]:
    """The dbt views the automation builds only when their code changes (all but the one on
    the decisions' path, whose blocking check guards routing on every load), and the longest
    chain of them."""
    parents = view_parents(load_manifest())
    decided = set(defs.resolve_job_def(live_decisions_job.name).asset_layer.selected_asset_keys)
    alone = {key: ps - decided for key, ps in parents.items() if key not in decided}
    return dg.AssetSelection.assets(*alone), longest_chain(alone)


def _look_through(views: dg.AssetSelection, depth: int) -> Callable[[dg.AssetSpec], dg.AssetSpec]:
    """Replaces `any_deps_updated` in an asset's condition by one that looks through `views`."""

    through = updated_through_views(views, depth)

    def mapped(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = spec.automation_condition
        if condition is None:
            return spec
        return spec.replace_attributes(
            automation_condition=condition.replace("any_deps_updated", through)
        )

    return mapped


# A view reads raw live: the automation no longer rebuilds the views after each load (it
# held the `dbt` slot 21-65 s per load for no new row); what reads them follows their inputs.
# (Dagster marks the mapping API "preview"; constraints.txt pins the Dagster it was tested
# with, and tests/orchestration/test_automation_conditions.py checks the outcome.)
_views, _depth = _views_left_alone()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = defs.map_resolved_asset_specs(
        func=lambda spec: spec.replace_attributes(
            automation_condition=built_when_its_code_changes()
        ),
        selection=_views,
    )
    defs = defs.map_resolved_asset_specs(
        func=_look_through(_views, _depth), selection=dg.AssetSelection.all() - _views
    )
if decision_worker_enabled():
    # `orderpulse up` runs the decision worker: the automation leaves it the decisions' path.
    # (Dagster marks the mapping API "preview"; constraints.txt pins the Dagster it was
    # tested with, and tests/orchestration/test_decision_worker.py checks the outcome.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        defs = defs.map_resolved_asset_specs(
            func=lambda spec: spec.replace_attributes(
                automation_condition=left_to_the_decision_worker()
            ),
            selection=live_decisions_job.selection,
        )
