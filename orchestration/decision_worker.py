"""The decision worker of `orderpulse up`: decides newly loaded orders within seconds.

A run per batch pays a process start and the definitions' import (7.5 s idle, far more on a
busy host), waits for the automation sensor's next tick, and eager automation never requests
an asset already in a run: an order pushed while its deciding run is running waited for that
run and the next (push -> routing p95 120-220 s measured). This process imports the
definitions once and, as soon as a load records a new materialization of anything the
decisions read, executes `live_decisions` in process: the staging and intermediate models
the decisions read, then the decisions (risk, CS holds, merges, routing, locks) and their
checks. Each pass is a real Dagster run in the instance (tag `trigger=decision_worker`),
visible in the UI; its dbt step takes the `dbt` pool's slot like any other run.

The automation sensor stays the guarantee: a pass this worker misses or fails, the next
automation run decides (the decisions are idempotent and take their advisory locks).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

import dagster as dg

JOB_NAME = "live_decisions"
TRIGGER_TAG = {"trigger": "decision_worker"}
# its dbt step goes before the automation's (5) when both wait for the `dbt` pool's slot
RUN_TAGS = {**TRIGGER_TAG, "dagster/priority": "8"}
DECISIONS = dg.AssetSelection.assets(
    ["raw", "address_geo"],
    ["ops", "risk_assessments"],
    ["ops", "review_queue"],
    ["ops", "merge_candidates"],
    ["ops", "routing_decisions"],
    ["ops", "inventory_locks"],
    ["ops", "pause_sale"],
)
# the models the decisions read (never the loads: the worker decides on what raw holds)
DECISION_INPUTS = DECISIONS.upstream() & dg.AssetSelection.groups("staging", "intermediate")
POLL_SECONDS = 1.0
# after a failed pass: the automation decides meanwhile; do not hammer a broken warehouse
BACKOFF_SECONDS = (5.0, 15.0, 60.0)
# the run's events are in the instance (and the UI); the console of `up` gets its warnings
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

live_decisions_job = dg.define_asset_job(
    name=JOB_NAME,
    selection=DECISION_INPUTS | DECISIONS,
    tags=TRIGGER_TAG,
    description=(
        "The decisions and the models they read, no loads: what `orderpulse up`'s decision "
        "worker runs in its own long-lived process as soon as new rows land in raw."
    ),
)


def watched_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """What the decisions read that `live_decisions` does not build: the loads into raw (and
    the risk model): a new materialization of one of these starts a pass."""
    graph = defs.resolve_asset_graph()
    job_keys = (DECISION_INPUTS | DECISIONS).resolve(graph)
    parents = {p for key in job_keys for p in graph.get(key).parent_keys}
    return sorted(
        (k for k in parents - job_keys if graph.get(k).is_materializable), key=lambda k: k.path
    )


@dataclass
class DecisionWorker:
    """Watches the inputs' materializations in the instance and runs the job on a change."""

    instance: dg.DagsterInstance
    job: dg.JobDefinition
    keys: list[dg.AssetKey]
    seen: int | None = None
    failures: int = 0
    runs: list[str] = field(default_factory=list)

    def watermark(self) -> int | None:
        """The newest materialization's event-log id over the watched keys (one query)."""
        ids = [
            record.asset_entry.last_materialization_storage_id
            for record in self.instance.get_asset_records(self.keys)
        ]
        return max((i for i in ids if i is not None), default=None)

    def step(self) -> dg.ExecuteInProcessResult | None:
        """One pass if a watched input changed since the last pass; None otherwise."""
        mark = self.watermark()
        if mark is None or mark == self.seen:
            return None
        # taken before the run: a load landing during it starts the next pass
        self.seen = mark
        result = self.job.execute_in_process(
            run_config=QUIET, instance=self.instance, tags=RUN_TAGS, raise_on_error=False
        )
        self.runs.append(result.run_id)
        self.failures = 0 if result.success else self.failures + 1
        return result

    def backoff(self) -> float:
        """Seconds to wait before the next pass: longer after consecutive failures."""
        if not self.failures:
            return POLL_SECONDS
        return BACKOFF_SECONDS[min(self.failures, len(BACKOFF_SECONDS)) - 1]


def fail_orphaned_runs(instance: dg.DagsterInstance) -> int:
    """Mark failed the worker's runs a previous process left in flight (killed mid-pass): a
    run left "started" would keep eager automation from ever requesting the decisions."""
    runs = instance.get_runs(dg.RunsFilter(job_name=JOB_NAME, statuses=IN_FLIGHT))
    for run in runs:
        instance.report_run_failed(run, "the decision worker that ran it stopped mid-run")
    return len(runs)


def main() -> None:
    """`python -m orchestration.decision_worker`: the loop `orderpulse up` starts."""
    from orchestration.definitions import defs
    from orchestration.quality.expectation_checks import import_great_expectations_in_background

    log = dg.get_dagster_logger("decision_worker")
    # Ctrl-C or SIGTERM end the loop (during a pass Dagster records the run as interrupted);
    # started in the background by a script, a process inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    import_great_expectations_in_background()  # once for the process: every pass checks
    with dg.DagsterInstance.get() as instance:
        if n := fail_orphaned_runs(instance):
            log.warning(f"marked {n} run(s) of a stopped decision worker failed")
        worker = DecisionWorker(instance, defs.resolve_job_def(JOB_NAME), watched_keys(defs))
        # what raw held before this process started is the automation's (and the initial
        # run's) to decide: start from now, not from the first load ever recorded
        worker.seen = worker.watermark()
        log.info(f"decision worker: watching {len(worker.keys)} inputs")
        try:
            while True:
                time.sleep(worker.backoff())
                try:
                    result = worker.step()
                except Exception as exc:  # the warehouse or the instance away: try again
                    worker.failures += 1
                    log.warning(f"decision pass not run: {exc}")
                    continue
                if result is not None and not result.success:
                    log.warning(f"decision run {result.run_id} failed; the automation decides")
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
