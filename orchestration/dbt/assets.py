"""Every dbt model is a Dagster asset and every dbt test an asset check.

The project runs as `@dbt_assets` ops around the Python steps that sit between dbt layers
(the cpca address placement and the decisions): `dbt_orders` parses the orders (`int_orders`
and the staging views under it), which the address placement, the merge candidates and the
risk model read, so they run beside `dbt_before_decisions`, which builds the rest of what the
decisions read (the order lines, the fulfilment events and statuses); `dbt_after_decisions`
builds everything downstream of the tables they write (`raw.address_geo`, `ops.*`):
`int_order_status` and the marts. A fourth, `dbt_merchant_systems`, builds the models that
read only the merchant systems' records: it waits for those loads alone, so in a run that also
pulls the marketplaces it builds beside their pulls instead of after the last of them. A
Python asset never sits between two models of one op, so every planned run splits into steps
and the graph is acyclic.
"""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    dbt_assets,
)

from orchestration.conventions import OWNERS, keep_current
from orchestration.dbt.model_metadata import ModelRelation, model_metadata, model_relations
from orchestration.dbt.project import dbt_project, load_manifest
from orchestration.dbt.view_tests import (
    ViewTests,
    record_passed,
    tests_to_leave_out,
    view_tests,
)
from orchestration.decision_worker import AWAITING_ALLOCATION
from orchestration.quality.expectation_checks import start_import_if_checked
from orchestration.resources import WarehouseResource
from orchestration.row_counts import row_count_metadata

# dbt selection of the models downstream of what the Python steps write (every mart but those
# of the merchant systems' records, below); the first op is the rest of the project.
AFTER_DECISIONS = "source:raw.address_geo+ source:ops+"
# dbt selection of the models that read nothing but the merchant systems' records: the
# behaviour log, carrier shipments and tracks, CS tickets, and the status seeds the carrier
# events map onto (their tests read each other). They waited for the last marketplace pull in
# the other ops (the log is the largest raw table: 67 s of a 1,000,000-order backfill's build;
# `fct_logistics_tracks` 58 s of the marts' build, which waits for the decisions); in an op of
# their own they build during the pulls. The other ops read some of them; a test that also
# reads a later op's model runs in that op (dbt_project.yml: `indirect_selection`).
MERCHANT_SYSTEMS = (
    "stg_merchant_systems__behaviour_events int_behaviour_events int_cart_adds "
    "stg_merchant_systems__carrier_shipments int_carrier_shipments "
    "stg_merchant_systems__carrier_tracks fct_logistics_tracks "
    "stg_merchant_systems__cs_tickets fct_cs_tickets "
    "fulfillment_event_map unified_statuses status_transitions"
)
MERCHANT_OP = "dbt_merchant_systems"
# dbt selection of the parsed orders: `int_orders` and what it is built from. The address
# placement (27 s of a 1,000,000-order backfill) waited for the whole first op, 45 s of it the
# fulfilment events and statuses it does not read; after this op it runs beside them.
ORDERS = "+int_orders"
ORDERS_OP = "dbt_orders"
# One build of each op at a time (limit 1 each, set by `orderpulse up`/`prepare`): two builds
# of one model at once would race on its merge. The ops may overlap (the decision worker's
# pass beside the automation's marts run): the marts take their orders from `fct_orders`
# (every child inner-joins it), change detection reads snapshots, so a pass that commits
# intermediate rows mid-run is picked up by the next marts build and no marts test sees an
# order its parent lacks (tests/faults/test_dbt_faults.py); the run hooks alter nothing that
# exists and grant under an advisory lock (macros/incremental.sql, macros/bi_reader_role.sql).
DBT_POOL = "dbt"
MARTS_POOL = "dbt_marts"
MERCHANT_POOL = "dbt_merchant_systems"
ORDERS_POOL = "dbt_orders"
POOLS = (DBT_POOL, MARTS_POOL, MERCHANT_POOL, ORDERS_POOL)
# dbt's saved parse state, which a later invocation reuses when nothing it depends on changed
PARTIAL_PARSE = "partial_parse.msgpack"


class OrderPulseTranslator(DagsterDbtTranslator):
    """Models keyed `<schema>/<model>` and grouped by layer; sources keep `<schema>/<table>`,
    which are exactly the keys of the assets that write them (ingest, enrichment, decisions),
    so the graph joins up."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project):  # type: ignore[override]
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        if node.get("resource_type") in ("model", "seed", "snapshot"):
            schema = node.get("schema") or "marts"
            return spec.replace_attributes(
                key=dg.AssetKey([schema, node["name"]]),
                group_name=schema,
                owners=OWNERS,
                automation_condition=keep_current(),
            ).merge_attributes(kinds={"postgres"})
        return spec


TRANSLATOR = OrderPulseTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=False)
)


def table_relations(manifest: Mapping[str, Any]) -> dict[dg.AssetKey, str]:
    """Asset key -> `schema.name` of every model dbt materialises as a table (views are not
    counted: counting one re-runs its whole query)."""
    out = {}
    for node in manifest["nodes"].values():
        materialized = node.get("config", {}).get("materialized")
        if node.get("resource_type") == "model" and materialized in ("table", "incremental"):
            out[dg.AssetKey([node["schema"], node["name"]])] = (
                f'"{node["schema"]}"."{node["name"]}"'
            )
    return out


def view_parents(manifest: Mapping[str, Any]) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    """Asset key of every model dbt materialises as a view -> the keys of the views it reads."""
    views = {
        uid: dg.AssetKey([node["schema"], node["name"]])
        for uid, node in manifest["nodes"].items()
        if node.get("resource_type") == "model"
        and node.get("config", {}).get("materialized") == "view"
    }
    return {
        key: {views[parent] for parent in manifest["nodes"][uid]["depends_on"]["nodes"]
              if parent in views}
        for uid, key in views.items()
    }  # fmt: skip


def longest_chain(parents: Mapping[dg.AssetKey, set[dg.AssetKey]]) -> int:
    """How many of these nodes the longest path through them passes (parents outside are
    ignored): how deep a condition must look through the views."""
    depth: dict[dg.AssetKey, int] = {}

    def of(key: dg.AssetKey) -> int:
        if key not in depth:
            depth[key] = 1 + max((of(p) for p in parents[key] if p in parents), default=0)
        return depth[key]

    return max((of(key) for key in parents), default=0)


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


# What every dbt run of the pipeline leaves out: unit tests check a model's SQL against fixed
# inputs, not the data, so they cannot fail on a new load; CI runs them (tests/dbt builds the
# project with them), and every data test still runs here. Under load int_order_status waited
# ~10 s on its unit test in each live `dbt_after_decisions` run.
RUN_EXCLUDES = ["--exclude-resource-type", "unit_test"]
# Nor does a run write manifest.json and run_results.json into its target folder: Dagster has
# the manifest and reads the results from dbt's event stream. Writing them cost ~0.7 s of
# dbt's ~6.3 s CPU in a run of the staging and intermediate models (20,000 orders, 2026-12-04).
RUN_FLAGS = [*RUN_EXCLUDES, "--no-write-json"]


def _with_model_metadata(
    event,
    conn,
    tables: Mapping[dg.AssetKey, str],
    models: Mapping[dg.AssetKey, ModelRelation],
    outputs: Mapping[str, dg.AssetKey],
):
    """Add to a model's materialisation `dagster/row_count` (tables), its column types, and a
    preview or trend on the key marts (orchestration/dbt/model_metadata.py). Read on the run's
    own connection by schema and name: the manifest's database name may differ from the
    target."""
    if not isinstance(event, dg.MaterializeResult | dg.Output):
        return event
    # dagster-dbt names a model's Output after its key (`marts__fct_orders`), with no key on it
    key = getattr(event, "asset_key", None) or outputs.get(getattr(event, "output_name", ""))
    if key is None:
        return event
    meta = dict(event.metadata or {})
    relation = tables.get(key)
    if relation is not None:
        try:
            meta.update(row_count_metadata(conn, relation))
        except psycopg.Error as exc:  # a count is for the UI: it never fails a dbt run
            dg.get_dagster_logger().warning(f"{relation}: row count left out ({exc})")
    if key in models:
        meta.update(model_metadata(conn, models[key]))
    if isinstance(event, dg.Output):
        return event.with_metadata(meta)
    return event._replace(metadata=meta)


def _run_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
    tables: Mapping[dg.AssetKey, str],
    models: Mapping[dg.AssetKey, ModelRelation],
    views: Mapping[dg.AssetKey, ViewTests],
) -> Iterator:
    start_import_if_checked(context.run)
    # the raw and ops tables belong to their writers: make sure they exist before dbt reads them
    warehouse.ensure_tables()
    os.environ.update(warehouse.dbt_env())
    with warehouse.connect() as conn:
        conn.autocommit = True
        checks_only = not context.selected_asset_keys
        outputs = {key.to_python_identifier(): key for key in models}
        args = [*dbt_args(config, checks_only), *RUN_FLAGS]
        left_out = []
        if not (checks_only or config.test_all_rows):
            left_out = tests_to_leave_out(conn, views, context.selected_asset_keys)
        if left_out:
            args += ["--exclude", " ".join(left_out)]  # one value: dbt splits it on spaces
            context.log.info(
                f"{len(left_out)} data tests of views left out: they passed on the same code "
                "(the nightly dbt_full_data_tests job runs them)"
            )
        invocation = dbt.cli(args, context=context)
        results: dict[tuple[dg.AssetKey, str], bool] = {}
        try:
            for event in invocation.stream():
                if isinstance(event, dg.AssetCheckResult | dg.AssetCheckEvaluation):
                    results[(event.asset_key, event.check_name)] = event.passed
                yield _with_model_metadata(event, conn, tables, models, outputs)
        finally:
            # also when a test failed (dbt exits 1, the stream raises): that view is forgotten
            try:
                record_passed(conn, views, results)
            except psycopg.Error as exc:  # the warehouse gone: its tests simply run next time
                dg.get_dagster_logger().warning(f"views' passed tests not recorded ({exc})")
        keep_partial_parse(invocation)  # not reached when dbt failed (the stream raised)


def keep_partial_parse(invocation: DbtCliInvocation) -> None:
    """After a successful dbt step: its parse state becomes the project's, and its own target
    folder goes.

    dagster-dbt gives each invocation a target folder of its own, seeded with the project's
    `target/partial_parse.msgpack`, and never writes back. dbt discards a parse state made
    under another connection ("profile has changed": host, port, user, database; the embedded
    server's port differs by home and may change when it restarts) and parses the whole
    project again: 15-21 s per dbt step on a 2-core host, in every run, for ever. Copied
    back, the next step parses only what changed. The folder (parse state, a debug log of
    ~2 MB, compiled SQL) would otherwise pile up at ~4 MB per step, unattended; a failed
    step's is kept to look at.
    """
    run_target = Path(invocation.target_path)
    project_target = Path(dbt_project.manifest_path).parent
    try:
        # the stream has ended: dbt has exited or is about to
        if invocation.process.wait(timeout=60) != 0 or run_target == project_target:
            return
        state = run_target / PARTIAL_PARSE
        if state.exists():
            # atomic: concurrent steps and the next invocation's copy never see half a file
            staged = project_target / f".{PARTIAL_PARSE}.{os.getpid()}"
            shutil.copyfile(state, staged)
            os.replace(staged, project_target / PARTIAL_PARSE)
    except (OSError, subprocess.TimeoutExpired) as exc:
        # housekeeping: the build itself succeeded, and the next step only parses in full
        dg.get_dagster_logger().warning(f"dbt parse state not kept ({exc})")
        return
    shutil.rmtree(run_target, ignore_errors=True)


def _dbt_op(
    manifest: Mapping[str, Any],
    tables: Mapping[dg.AssetKey, str],
    models: Mapping[dg.AssetKey, ModelRelation],
    views: Mapping[dg.AssetKey, ViewTests],
    name: str,
    pool: str,
    **selection: str,
) -> dg.AssetsDefinition:
    """One `@dbt_assets` op over the models `selection` (select= or exclude=) picks, one build
    at a time in `pool`."""

    @dbt_assets(
        manifest=manifest,
        project=dbt_project,
        dagster_dbt_translator=TRANSLATOR,
        name=name,
        pool=pool,
        **selection,
    )
    def _op(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse: WarehouseResource,
        config: DbtBuildConfig,
    ):
        yield from _run_dbt(context, dbt, warehouse, config, tables, models, views)

    return _op


def build_dbt_assets() -> list[dg.AssetsDefinition]:
    """The dbt ops, from the manifest read once: the parsed orders, the other staging and
    intermediate models the decisions read, the models downstream of the decisions
    (int_order_status, marts), and the models of the merchant systems' records."""
    manifest = load_manifest()
    tables = table_relations(manifest)
    models = model_relations(manifest)
    # the view on the decisions' path is tested on every build, as the automation builds it
    views = view_tests(manifest, always=[AWAITING_ALLOCATION])
    common = (manifest, tables, models, views)
    return [
        _dbt_op(
            *common,
            "dbt_before_decisions",
            DBT_POOL,
            exclude=f"{AFTER_DECISIONS} {MERCHANT_SYSTEMS} {ORDERS}",
        ),
        _dbt_op(*common, ORDERS_OP, ORDERS_POOL, select=ORDERS),
        _dbt_op(*common, "dbt_after_decisions", MARTS_POOL, select=AFTER_DECISIONS),
        _dbt_op(*common, MERCHANT_OP, MERCHANT_POOL, select=MERCHANT_SYSTEMS),
    ]


DBT_OPS = ("dbt_before_decisions", "dbt_after_decisions", MERCHANT_OP, ORDERS_OP)


def build_dbt_full_tests_job(dbt_defs: list[dg.AssetsDefinition]):
    """Every dbt data test over every row, nightly: the runs in between test only the rows each
    build wrote. Checks only, no model is rebuilt."""
    return dg.define_asset_job(
        name="dbt_full_data_tests",
        selection=dg.AssetSelection.checks_for_assets(*dbt_defs),
        config={"ops": {op: {"config": {"test_all_rows": True}} for op in DBT_OPS}},
        description=(
            "Every dbt data test over every row (incremental builds test the rows they wrote)."
        ),
    )
