"""The decision worker of `orderpulse up`: decides newly loaded orders within seconds.

A run per batch pays a process start and the definitions' import (7.5 s idle, far more on a
busy host), waits for the automation sensor's next tick, and eager automation never requests
an asset already in a run: an order pushed while its deciding run is running waited for that
run and the next (push -> routing p95 120-220 s measured). This process imports the
definitions once and, as soon as a load records a new materialization of anything the
decisions read, executes `live_decisions` in process: the stored models the decisions read
(incremental intermediate models; the views read raw live), then the decisions (risk, CS
holds, merges, routing, locks) and their checks. Each pass is a real Dagster run in the
instance (tag `trigger=decision_worker`), visible in the UI; its dbt steps take the `dbt`
and `dbt_merchant_systems` pools' slots like any build of those ops and run beside the
automation's marts builds (pool `dbt_marts`) instead of waiting for them: they held the slot
9-28 s after every pass (push -> routing p95 32 s, 2026-12-06).

`orderpulse up` sets ORDERPULSE_DECISION_WORKER=1 for the code location, which then leaves
these assets to the worker (the automation builds them only when missing or when their code
changed) and restarts the worker if it exits. A failed pass is tried again after a backoff;
the decisions are idempotent and take their advisory locks, so a pass beside any other run
of them is safe.

A pass leaves out the `dbt_merchant_systems` op (the behaviour log's and the shipments'
models) unless one of its loads landed since a pass last built it: most passes follow a
marketplace push, and a second dbt step beside the first cost each of them ~6 s (push ->
routing p95 14.2 -> 20.4 s).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import dagster as dg

from orchestration.dbt.project import load_manifest

JOB_NAME = "live_decisions"
# set by `orderpulse up` for the processes it starts when the worker runs
WORKER_ENV = "ORDERPULSE_DECISION_WORKER"
TRIGGER_TAG = {"trigger": "decision_worker"}
# its dbt step goes before the automation's (5) when both wait for the `dbt` pool's slot; no
# run retry (dagster.yaml retries runs that failed outside their steps): the daemon cannot
# launch an in-process run again, and the worker tries a failed pass again itself
RUN_TAGS = {**TRIGGER_TAG, "dagster/priority": "8", "dagster/max_retries": "0"}
# only the worker's own passes (a run of the job launched from the UI has the job's tags)
PASS_TAG = {"orderpulse/decision_worker_pass": "true"}
FAILURE_REASON_TAG = "dagster/failure_reason"
DECISIONS = dg.AssetSelection.assets(
    ["raw", "address_geo"],
    ["ops", "risk_assessments"],
    ["ops", "review_queue"],
    ["ops", "merge_candidates"],
    ["ops", "routing_decisions"],
    ["ops", "inventory_locks"],
    ["ops", "pause_sale"],
)
DBT_GROUPS = ("staging", "intermediate")
AWAITING_ALLOCATION = dg.AssetKey(["intermediate", "int_orders_awaiting_allocation"])


def _stored_models() -> list[dg.AssetKey]:
    """The dbt models that hold rows (incremental, table). Views and seeds read what raw and
    the project hold now and change only with the project: rebuilding them (31 staging views,
    4 seeds and their tests) in every pass cost most of its dbt step; the automation and the
    full run keep them current."""
    return [
        dg.AssetKey([node["schema"], node["name"]])
        for node in load_manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "view"
    ]


def job_selection() -> dg.AssetSelection:
    """What a pass builds: the stored models the decisions read (never a load: it decides on
    what raw holds) and the view whose blocking check guards routing, then the decisions; and
    the other stored staging and intermediate models (`int_cart_adds`), so that after a load
    the automation has nothing of the first dbt op left to build: its run for them (4-15 s,
    dbt's start for one small model) held the `dbt` pool's slot the passes wait for. Reads the
    dbt manifest: called when the definitions are built, not on import."""
    stored = dg.AssetSelection.assets(*_stored_models())
    inputs = DECISIONS.upstream() & (stored | dg.AssetSelection.assets(AWAITING_ALLOCATION))
    beside = stored & dg.AssetSelection.groups(*DBT_GROUPS) - DECISIONS.downstream()
    return inputs | beside | DECISIONS


POLL_SECONDS = 1.0
# before trying a failed pass again: do not hammer a broken warehouse
BACKOFF_SECONDS = (5.0, 15.0, 60.0)
# the run's events are in the instance (and the UI); the console of `up` gets its warnings
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def build_live_decisions_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=JOB_NAME,
        selection=job_selection(),
        tags=TRIGGER_TAG,
        description=(
            "The decisions and the models they read, no loads: what `orderpulse up`'s decision "
            "worker runs in its own long-lived process as soon as new rows land in raw."
        ),
    )


def decision_worker_enabled() -> bool:
    """Whether a decision worker runs beside this code location (`orderpulse up` says so)."""
    return os.environ.get(WORKER_ENV, "") == "1"


def watched_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """What starts a pass: a new materialization of anything upstream of the decisions that
    neither a pass nor dbt builds (the views in between read it live): the loads into raw."""
    graph = defs.resolve_asset_graph()
    job_keys = defs.resolve_job_def(JOB_NAME).asset_layer.selected_asset_keys
    upstream = DECISIONS.upstream().resolve(graph) - job_keys
    return sorted(
        (
            key
            for key in upstream
            if graph.get(key).is_materializable and graph.get(key).group_name not in DBT_GROUPS
        ),
        key=lambda k: k.path,
    )


@dataclass
class DecisionWorker:
    """Watches the inputs' materializations in the instance and runs the job on a change."""

    instance: dg.DagsterInstance
    job: dg.JobDefinition
    keys: list[dg.AssetKey]
    seen: int | None = None
    # assets a pass builds only when one of `optional_inputs` changed since a pass built them
    optional: frozenset[dg.AssetKey] = frozenset()
    optional_inputs: list[dg.AssetKey] = field(default_factory=list)
    optional_seen: int | None = None
    ready: bool = False
    interrupted: bool = False
    failures: int = 0
    runs: list[str] = field(default_factory=list)

    def watermark(self, keys: list[dg.AssetKey] | None = None) -> int | None:
        """The newest materialization's event-log id over the watched keys, or over `keys`
        (one query)."""
        ids = [
            record.asset_entry.last_materialization_storage_id
            for record in self.instance.get_asset_records(self.keys if keys is None else keys)
        ]
        return max((i for i in ids if i is not None), default=None)

    def built(self) -> bool:
        """Whether everything a pass builds or reads was built once (by the initial full run,
        the automation or a backfill): before that a pass fails on relations missing."""
        if not self.ready:
            keys = list(self.job.asset_layer.selected_asset_keys)
            records = self.instance.get_asset_records(keys)
            stored = [r.asset_entry.last_materialization_storage_id for r in records]
            self.ready = len(stored) == len(keys) and None not in stored
        return self.ready

    def step(self) -> dg.ExecuteInProcessResult | None:
        """One pass if a watched input changed since the last pass and the graph was built
        once; None otherwise."""
        mark = self.watermark()
        if mark is None or mark == self.seen or not self.built():
            return None
        # taken before the run: a load landing during it starts the next pass
        previous, self.seen = self.seen, mark
        optional_mark = self.watermark(self.optional_inputs) if self.optional else None
        selection = None
        if self.optional and optional_mark == self.optional_seen:
            selection = sorted(
                set(self.job.asset_layer.selected_asset_keys) - self.optional,
                key=lambda k: k.path,
            )
        result = self.job.execute_in_process(
            run_config=QUIET,
            instance=self.instance,
            tags={**RUN_TAGS, **PASS_TAG},
            raise_on_error=False,
            asset_selection=selection,
        )
        self.runs.append(result.run_id)
        self.failures = 0 if result.success else self.failures + 1
        if result.success:
            self.optional_seen = optional_mark
        else:
            # a SIGINT/SIGTERM during a pass is Dagster's (it ends the run as interrupted and
            # returns): the worker's own handler never saw it, so stop here
            run = self.instance.get_run_by_id(result.run_id)
            reason = run.tags.get(FAILURE_REASON_TAG) if run else None
            self.interrupted = reason == "UNEXPECTED_TERMINATION"
            # what this pass was for is not decided: the next pass (after the backoff) is
            self.seen = previous
        return result

    def backoff(self) -> float:
        """Seconds to wait before the next pass: longer after consecutive failures."""
        if not self.failures:
            return POLL_SECONDS
        return BACKOFF_SECONDS[min(self.failures, len(BACKOFF_SECONDS)) - 1]


def merchant_systems_assets(
    defs: dg.Definitions, watched: list[dg.AssetKey]
) -> tuple[frozenset[dg.AssetKey], list[dg.AssetKey]]:
    """The pass's assets built by the `dbt_merchant_systems` op, and the watched loads they
    read: a pass builds the first only when one of the second changed."""
    from orchestration.dbt.assets import MERCHANT_OP

    job_keys = defs.resolve_job_def(JOB_NAME).asset_layer.selected_asset_keys
    optional = frozenset(k for k in job_keys if defs.get_assets_def(k).op.name == MERCHANT_OP)
    upstream = dg.AssetSelection.assets(*optional).upstream().resolve(defs.resolve_asset_graph())
    return optional, sorted((k for k in watched if k in upstream), key=lambda k: k.path)


def fail_orphaned_runs(instance: dg.DagsterInstance) -> int:
    """Mark failed the passes a previous worker process left in flight (killed mid-pass): a
    run left "started" would keep eager automation from ever requesting the decisions. A run
    of the job launched from the UI is the daemon's to watch, not this."""
    runs = instance.get_runs(dg.RunsFilter(job_name=JOB_NAME, statuses=IN_FLIGHT, tags=PASS_TAG))
    for run in runs:
        instance.report_run_failed(run, "the decision worker that ran it stopped mid-run")
    return len(runs)


def main() -> None:
    """`python -m orchestration.decision_worker`: the loop `orderpulse up` starts."""
    from orchestration.definitions import defs
    from orchestration.quality.expectation_checks import import_great_expectations_in_background

    # its own lines at INFO; the libraries' (GX, dagster-dbt's per-pass lines) from WARNING
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    log = logging.getLogger("orderpulse.decision_worker")
    log.setLevel(logging.INFO)
    log.propagate = False
    own = logging.StreamHandler()
    own.setFormatter(logging.Formatter("%(asctime)s decision worker: %(message)s"))
    log.addHandler(own)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints where a stuck worker is
    stop = threading.Event()

    def _stop(*_: object) -> None:
        # Dagster ends a pass in progress as an interrupted run and returns: the flag ends the
        # loop then. (During a pass Dagster takes SIGINT for itself: stop it with SIGTERM.)
        stop.set()
        raise KeyboardInterrupt

    # started in the background by a script, a process inherits SIGINT ignored
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    import_great_expectations_in_background()  # once for the process: every pass checks
    # a stop asked for at any point ends the process cleanly, even while it starts or logs
    # (a SIGTERM landing inside the "watching" line's write escaped the loop's handler)
    try:
        with dg.DagsterInstance.get() as instance:
            if n := fail_orphaned_runs(instance):
                log.warning(f"marked {n} run(s) of a stopped decision worker failed")
            watched = watched_keys(defs)
            optional, optional_inputs = merchant_systems_assets(defs, watched)
            worker = DecisionWorker(
                instance,
                defs.resolve_job_def(JOB_NAME),
                watched,
                optional=optional,
                optional_inputs=optional_inputs,
            )
            # what raw held before this process started is the automation's (and the initial
            # run's) to decide: start from now, not from the first load ever recorded
            worker.seen = worker.watermark()
            worker.optional_seen = worker.watermark(optional_inputs)
            log.info(f"watching {len(worker.keys)} inputs")
            while not (stop.is_set() or worker.interrupted):
                time.sleep(worker.backoff())
                try:
                    result = worker.step()
                except Exception as exc:  # the warehouse or the instance away: try again
                    worker.failures += 1
                    log.warning(f"decision pass not run: {exc}")
                    continue
                if worker.interrupted:
                    log.info(f"stopping: run {result.run_id} interrupted")
                elif result is not None and not result.success:
                    wait = worker.backoff()
                    log.warning(f"decision run {result.run_id} failed; next pass in {wait:.0f} s")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
