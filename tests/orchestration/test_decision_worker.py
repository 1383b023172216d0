"""The decision worker's seams that need no warehouse: what it watches, what its job builds,
and the runs a killed worker left behind (its passes end to end: test_skeleton_e2e.py and
the live-mode test)."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.decision_worker import (
    JOB_NAME,
    PASS_TAG,
    RUN_TAGS,
    DecisionWorker,
    fail_orphaned_runs,
    watched_keys,
)


@pytest.fixture()
def defs() -> dg.Definitions:
    """The definitions read the dbt manifest, which a session fixture prepares: not at import."""
    from orchestration.definitions import defs

    return defs


def _keys(keys) -> set[str]:
    return {"/".join(k.path) for k in keys}


def test_the_worker_watches_every_load_the_decisions_read_and_builds_no_load(defs) -> None:
    from connectors.channels_config import load_channels

    watched = _keys(watched_keys(defs))
    job = defs.resolve_job_def(JOB_NAME)
    built = _keys(job.asset_layer.selected_asset_keys)
    # every channel's order load starts a pass, and so do the WMS's stock and events
    assert {f"raw/{channel}_orders" for channel in load_channels().channels} <= watched
    assert {"raw/wms_stock", "raw/wms_events"} <= watched
    # the job decides and builds what the decisions read, never a load or a mart
    assert {"ops/routing_decisions", "ops/risk_assessments", "ops/merge_candidates",
            "ops/review_queue", "ops/inventory_locks",
            "intermediate/int_orders_awaiting_allocation"} <= built  # fmt: skip
    assert not watched & built
    assert not {k for k in built if k.startswith("marts/")}
    assert {k for k in built if k.startswith("raw/")} == {"raw/address_geo"}
    # views and seeds read raw live: a pass builds the stored models and the one view whose
    # blocking check guards routing
    assert not {k for k in built if k.startswith("staging/")}
    assert "intermediate/int_orders_unioned" not in built
    # and every other stored model of the first dbt op: after a load the automation has none
    # of it left to build (its run would hold the `dbt` pool's slot a pass waits for)
    assert "intermediate/int_cart_adds" in built
    first_op = _keys(defs.get_assets_def(dg.AssetKey(["intermediate", "int_orders"])).keys)
    stored = {k for k in first_op if k.startswith("intermediate/") and k in built}
    assert stored == {k for k in first_op if k.startswith("intermediate/")} - {
        "intermediate/int_orders_unioned", "intermediate/int_order_items_unioned",
        "intermediate/int_order_platform_status",
    }  # fmt: skip


def test_a_pass_never_waits_for_a_marts_build(defs) -> None:
    """The pass's dbt steps are the parsed orders' op (pool `dbt_orders`) and the first op's
    (pool `dbt`); the marts are the after-decisions op's (pool `dbt_marts`): a pass runs beside
    the automation's marts build instead of queueing behind it. Two builds of one op still
    wait for each other."""
    from orchestration.dbt.assets import DBT_POOL, MARTS_POOL, MERCHANT_POOL, ORDERS_POOL, POOLS

    job = defs.resolve_job_def(JOB_NAME)
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    dbt_steps = {name: pool for name, pool in pools.items() if name.startswith("dbt_")}
    assert dbt_steps == {
        "dbt_orders": ORDERS_POOL,
        "dbt_before_decisions": DBT_POOL,
        "dbt_merchant_systems": MERCHANT_POOL,
    }
    marts = defs.get_assets_def(dg.AssetKey(["marts", "fct_orders"]))
    assert marts.op.name == "dbt_after_decisions" and marts.op.pool == MARTS_POOL
    assert len(set(POOLS)) == len(POOLS) == 4


def test_the_address_placement_waits_for_the_parsed_orders_alone(defs) -> None:
    """The address placement reads `int_orders` only: its step follows the parsed orders' op
    and runs beside the first op's fulfilment models, not after them."""
    graph = defs.resolve_asset_graph()
    geo = dg.AssetKey(["raw", "address_geo"])
    parents_ops = {defs.get_assets_def(k).op.name for k in graph.get(geo).parent_keys}
    assert parents_ops == {"dbt_orders"}
    status = dg.AssetKey(["intermediate", "int_order_fulfillment_status"])
    assert defs.get_assets_def(status).op.name == "dbt_before_decisions"


def test_a_run_left_in_flight_by_a_killed_worker_is_marked_failed(
    defs, monkeypatch, tmp_path
) -> None:
    # the job's resources read these when a run is created (nothing connects here)
    monkeypatch.setenv("ORDERPULSE_WAREHOUSE_URL", "postgresql://127.0.0.1:9/none")
    monkeypatch.setenv("ORDERPULSE_HOME", str(tmp_path))
    with dg.DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def(JOB_NAME)
        left = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.STARTED, tags={**RUN_TAGS, **PASS_TAG}
        )
        done = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.SUCCESS, tags={**RUN_TAGS, **PASS_TAG}
        )
        # launched from the UI: the daemon's run, not a pass
        launched = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        assert fail_orphaned_runs(instance) == 1
        assert instance.get_run_by_id(left.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(done.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_run_by_id(launched.run_id).status == dg.DagsterRunStatus.STARTED
        assert fail_orphaned_runs(instance) == 0


def test_no_pass_before_the_graph_was_built_or_without_a_new_load(defs) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def(JOB_NAME)
        worker = DecisionWorker(instance, job, watched_keys(defs))
        assert worker.watermark() is None and worker.step() is None
        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "wms_stock"]))
        mark = worker.watermark()
        assert mark is not None
        # a load landed, but nothing a pass builds was ever built: a pass would fail
        assert not worker.built()
        assert worker.step() is None and worker.seen is None
        assert instance.get_runs_count() == 0
        for key in job.asset_layer.selected_asset_keys:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        assert worker.built()
        worker.seen = worker.watermark()
        assert worker.step() is None  # nothing new since
        # a materialization the decisions do not read starts nothing
        instance.report_runless_asset_event(dg.AssetMaterialization(["marts", "fct_orders"]))
        assert worker.watermark() == worker.seen
        assert worker.step() is None and instance.get_runs_count() == 0


def test_the_worker_waits_longer_after_consecutive_failures(defs) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        worker = DecisionWorker(instance, defs.resolve_job_def(JOB_NAME), watched_keys(defs))
        waits = []
        for failures in range(5):
            worker.failures = failures
            waits.append(worker.backoff())
        assert waits[0] == 1.0
        assert waits == sorted(waits) and waits[1] > waits[0] and waits[-1] >= 60


def test_sigterm_ends_the_worker_process(tmp_path) -> None:
    """`orderpulse up` stops the worker with SIGTERM (during a pass Dagster takes SIGINT for
    itself): the process ends, exit status 0."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        # an instance of its own (SQLite under DAGSTER_HOME); nothing connects to the warehouse
        "DAGSTER_HOME": str(tmp_path),
        "ORDERPULSE_HOME": str(tmp_path),
        "ORDERPULSE_WAREHOUSE_URL": "postgresql://127.0.0.1:9/none",
    }
    (tmp_path / "dagster.yaml").write_text("")  # SQLite storage under DAGSTER_HOME
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestration.decision_worker"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "watching" not in log.read_text():
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()


VIEW_LABEL = "a view: built when its code changes"
PROBE = """
import json
from orchestration.definitions import defs
graph = defs.resolve_asset_graph()
print(json.dumps({"/".join(k.path): graph.get(k).automation_condition.get_label()
                  for k in graph.materializable_asset_keys
                  if graph.get(k).automation_condition is not None}))
"""


def test_with_the_worker_on_the_automation_leaves_it_the_decisions_path(defs, tmp_path) -> None:
    """`orderpulse up` sets ORDERPULSE_DECISION_WORKER=1 for the code location: the job's
    assets are then built by the automation only when missing or when their code changed;
    every other asset (the marts, the reports) keeps following its inputs. Without the flag
    nothing changes."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    built = _keys(defs.resolve_job_def(JOB_NAME).asset_layer.selected_asset_keys)
    labels = {}
    for flag in ("1", ""):
        env = {**os.environ, "ORDERPULSE_DECISION_WORKER": flag, "ORDERPULSE_HOME": str(tmp_path)}
        out = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True,
            timeout=300, check=True,
        ).stdout  # fmt: skip
        labels[flag] = json.loads(out.strip().splitlines()[-1])
    on, off = labels["1"], labels[""]
    assert {key for key, label in on.items() if label == "left to the decision worker"} == built
    # the views the automation rebuilds only when their code changes (test_automation_conditions.py)
    views = {key for key, label in off.items() if label == VIEW_LABEL}
    assert views and not views & built
    assert {on[key] for key in set(on) - built - views} == {"eager"}
    assert {off[key] for key in set(off) - views} == {"eager"} and set(off) == set(on)
    assert {on[key] for key in views} == {VIEW_LABEL}


def test_a_failed_pass_is_tried_again_until_it_succeeds() -> None:
    """A pass whose run fails leaves its load undecided: the worker runs it again after a
    backoff, without a new load, and stops trying once a pass succeeded. A step failure is
    not an interrupt: the worker goes on."""
    attempts = []

    @dg.asset(key=["ops", "flaky_decision"])
    def flaky_decision() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("warehouse away")

    job = dg.Definitions(
        assets=[flaky_decision], jobs=[dg.define_asset_job("flaky", selection=[flaky_decision])]
    ).resolve_job_def("flaky")
    with dg.DagsterInstance.ephemeral() as instance:
        for key in (["raw", "some_orders"], ["ops", "flaky_decision"]):
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        worker = DecisionWorker(instance, job, [dg.AssetKey(["raw", "some_orders"])])
        first = worker.step()
        assert first is not None and not first.success
        assert worker.seen is None and worker.failures == 1 and not worker.interrupted
        assert worker.backoff() > 1.0
        again = worker.step()  # no new load: the same one, tried again
        assert again is not None and again.success
        assert worker.failures == 0 and worker.seen == worker.watermark()
        assert worker.step() is None
        assert len(attempts) == 2 and worker.runs == [first.run_id, again.run_id]


def test_a_pass_builds_the_merchant_systems_models_only_after_their_loads(defs) -> None:
    """The pass's models of the `dbt_merchant_systems` op are built when the behaviour log or
    the shipments were loaded since a pass last built them; a marketplace load alone runs
    the pass without them (one dbt step instead of two)."""
    from orchestration.decision_worker import merchant_systems_assets

    optional, inputs = merchant_systems_assets(defs, watched_keys(defs))
    assert _keys(optional) == {
        "intermediate/int_behaviour_events", "intermediate/int_cart_adds",
        "intermediate/int_carrier_shipments",
    }  # fmt: skip
    assert {"raw/behaviour_events", "raw/carrier_shipments"} <= _keys(inputs)
    assert "raw/taobao_orders" not in _keys(inputs)

    built = []

    @dg.asset(key=["ops", "decision"], deps=[["raw", "orders"]])
    def decision() -> None:
        built.append("decision")

    @dg.asset(key=["intermediate", "events"], deps=[["raw", "events"]])
    def events() -> None:
        built.append("events")

    job = dg.Definitions(
        assets=[decision, events],
        jobs=[dg.define_asset_job("a_pass", selection=[decision, events])],
    ).resolve_job_def("a_pass")
    orders, logged = dg.AssetKey(["raw", "orders"]), dg.AssetKey(["raw", "events"])
    with dg.DagsterInstance.ephemeral() as instance:
        for key in (orders, logged, *job.asset_layer.selected_asset_keys):
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        worker = DecisionWorker(
            instance, job, [orders, logged],
            optional=frozenset({events.key}), optional_inputs=[logged],
        )  # fmt: skip
        worker.seen, worker.optional_seen = worker.watermark(), worker.watermark([logged])
        instance.report_runless_asset_event(dg.AssetMaterialization(orders))
        assert worker.step().success and built == ["decision"]
        instance.report_runless_asset_event(dg.AssetMaterialization(logged))
        assert worker.step().success and sorted(built[1:]) == ["decision", "events"]
        instance.report_runless_asset_event(dg.AssetMaterialization(orders))
        assert worker.step().success and built[3:] == ["decision"]
