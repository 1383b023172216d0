"""Dagster's in-process executor with steps side by side on threads of the run's process.

Dagster's `in_process_executor` runs a run's steps one after another; its
`multiprocess_executor` runs them side by side but starts a process per step, which imports
Dagster and loads these definitions (seconds each; a minute per step was seen on a busy 2-core
host) before the step does anything. OrderPulse's steps mostly wait: on a platform's gateway
(a pull), on PostgreSQL (decisions, Great Expectations' queries) or on dbt's own process. In
sequence, a cycle of 10,000 orders spent 18.5 s pulling ten channels one by one and ran its
checks after dbt instead of beside it. Here up to `max_concurrent` steps whose inputs are
ready run at once, each on its own thread, in the one process that already holds the
resources; the order, retries, pools (the one-dbt-at-a-time slots) and hooks are Dagster's
own (`ActiveExecution`), as in its multiprocess executor.

A run interrupted (`orderpulse down`, a cancelled run) has the interrupt raised in each running
step, as the in-process executor does in its one step: dagster-dbt stops dbt, a pull stops
between pages, and each step logs its failure.
"""

from __future__ import annotations

import contextvars
import ctypes
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.execute_plan import _trigger_hook, dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._core.executor.init import InitExecutorContext
from dagster._core.storage.tags import PRIORITY_TAG

# Steps at once: two cores, and most steps wait on another process (PostgreSQL, dbt, a
# gateway); dbt's steps take one slot of the instance's `dbt` pools as before.
DEFAULT_MAX_CONCURRENT = 4
# Steps tagged so (the loads: pulls, file loads, the merchant systems) run one at a time: a
# load parses its pages in this process, under its one interpreter lock, so loads side by side
# shared one core and each waited on the lock between its requests (at 1,000,000 orders the
# marketplaces' pulls together loaded fewer orders a second than one after another).
LOAD_TAG = "orderpulse/load"
LOAD_OP_TAGS = {LOAD_TAG: "true"}
DEFAULT_LOADS_AT_ONCE = 1
# Steps tagged so (the marketplaces' pulls) load in processes of their own
# (connectors/pull_process.py), each with its own interpreter lock: two at once loaded
# 1,117-1,133 orders/s on the 2-core host, one after the other in one process 678-728
# (bench/pull_processes.py). They do not count against the loads above, which parse their
# pages in this process.
PULL_TAG = "orderpulse/pull_process"
PULL_OP_TAGS = {PULL_TAG: "true"}
DEFAULT_PULLS_AT_ONCE = 2
# Great Expectations checks (op tag below) two at a time: each holds its validation's results
# in this process, and four at once on the big raw tables beside a pull took the 1 M
# backfill's run process to 2,347 MiB, over its 2 GiB budget; two at once (the pulls in
# processes of their own) peaked at 1,400 MiB (bench/README.md, 2026-12-07 17:19). One at a
# time, the last loads' checks queued in front of the first dbt op in every cycle.
GX_TAG = "orderpulse/great_expectations"
GX_OP_TAGS = {GX_TAG: "true"}
DEFAULT_CHECKS_AT_ONCE = 2
# How long a thread that waited (on a socket, PostgreSQL, a lock) may wait for the interpreter
# lock while another thread computes; Python's default is 5 ms. A pull's eight detail-call
# workers each wait once per request, so beside a CPU-bound step (Great Expectations importing
# or validating, dagster-dbt reading dbt's events) every request of the pull waited up to that
# long: with a busy thread beside it, a pull of 14,000 orders loaded 231 orders/s at 5 ms and
# 536 at 0.5 ms (751 at 0.5 ms and 785 at 5 ms with nothing beside it; bench/README.md).
SWITCH_INTERVAL_SECONDS = 0.0005
# How long the run waits for interrupted steps to log their failure before it stops anyway.
INTERRUPT_GRACE_SECONDS = 60.0
_POLL_SECONDS = 0.5


@dataclass
class _Running:
    thread: threading.Thread
    step_context: Any
    events: list[DagsterEvent] = field(default_factory=list)


def _raise_in_thread(thread: threading.Thread, error: type[BaseException]) -> None:
    """Raise `error` in `thread` at its next Python instruction (a step blocked in C, a query
    or a read, sees it when that returns)."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(error)
        )


def _run_step(step_key: str, step_context: Any, out: queue.Queue) -> None:
    """Run one step on this thread, handing each of its events to the run's thread."""
    error: BaseException | None = None
    try:
        for event in dagster_event_sequence_for_step(step_context):
            out.put(("event", step_key, event))
    except BaseException as exc:  # handed to the run's thread, raised there
        error = exc
    out.put(("done", step_key, error))


def downstream_first(execution_plan: ExecutionPlan) -> Callable[[Any], float]:
    """Dagster's sort key for ready steps (higher `dagster/priority` first), then the step with
    more steps downstream of it first: a pull or a dbt build before a check that nothing
    waits on, so the checks fill the slots the longest chain leaves free."""
    deps = execution_plan.get_executable_step_deps()
    children: dict[str, set[str]] = {key: set() for key in deps}
    for key, upstream in deps.items():
        for parent in upstream:
            children.setdefault(parent, set()).add(key)

    @cache
    def below(key: str) -> frozenset[str]:
        found: set[str] = set()
        for child in children.get(key, ()):
            found |= {child, *below(child)}
        return frozenset(found)

    def key(step: Any) -> float:
        try:
            priority = int(step.tags.get(PRIORITY_TAG, 0))
        except ValueError:
            priority = 0
        return -(priority * 100_000 + len(below(step.key)))

    return key


def threaded_plan_iterator(
    job_context: PlanExecutionContext,
    execution_plan: ExecutionPlan,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    loads_at_once: int = DEFAULT_LOADS_AT_ONCE,
    checks_at_once: int = DEFAULT_CHECKS_AT_ONCE,
    pulls_at_once: int = DEFAULT_PULLS_AT_ONCE,
) -> Iterator[DagsterEvent]:
    """`inner_plan_execution_iterator` of Dagster's in-process executor, with up to
    `max_concurrent` steps running at once on threads, `loads_at_once` of them loads and
    `pulls_at_once` of them pulls in processes of their own."""
    # for the process's life: the steps' threads hand the lock round from here on
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    out: queue.Queue = queue.Queue()
    running: dict[str, _Running] = {}
    interrupted = False
    failure: BaseException | None = None
    with (
        InstanceConcurrencyContext(job_context.instance, job_context.dagster_run) as slots,
        ActiveExecution(
            execution_plan,
            retry_mode=job_context.retry_mode,
            sort_key_fn=downstream_first(execution_plan),
            max_concurrent=max_concurrent,
            tag_concurrency_limits=[
                {"key": LOAD_TAG, "value": "true", "limit": loads_at_once},
                {"key": GX_TAG, "value": "true", "limit": checks_at_once},
                {"key": PULL_TAG, "value": "true", "limit": pulls_at_once},
            ],
            instance_concurrency_context=slots,
            step_dependency_config=job_context.step_dependency_config,
        ) as active,
    ):
        log_key = compute_log_manager.build_log_key_for_run(
            job_context.run_id, create_compute_log_file_key()
        )
        with compute_log_manager.capture_logs(log_key) as log_context:
            yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)
            while running or not (active.is_complete or interrupted or failure):
                if not interrupted and active.check_for_interrupts():
                    interrupted = True
                    active.mark_interrupted()
                    yield DagsterEvent.engine_event(
                        job_context,
                        "Run interrupted: stopping the running steps "
                        f"({', '.join(sorted(running)) or 'none'})",
                        EngineEventData.interrupted(list(running)),
                    )
                    for item in running.values():
                        _raise_in_thread(item.thread, DagsterExecutionInterruptedError)
                if not (interrupted or failure):
                    for step in active.get_steps_to_execute(limit=max_concurrent - len(running)):
                        step_context = job_context.for_step(step, active.get_known_state())
                        context = contextvars.copy_context()  # the run's context vars
                        thread = threading.Thread(
                            target=context.run,
                            args=(_run_step, step.key, step_context, out),
                            name=f"step:{step.key}",
                            daemon=True,
                        )
                        running[step.key] = _Running(thread, step_context)
                        thread.start()
                    yield from active.concurrency_event_iterator(job_context)
                if not running:
                    yield from active.plan_events_iterator(job_context)
                    if not active.is_complete and not (interrupted or failure):
                        active.sleep_til_ready()  # a retry's wait, a pool slot
                    continue
                try:
                    kind, key, payload = out.get(
                        timeout=INTERRUPT_GRACE_SECONDS if interrupted else _POLL_SECONDS
                    )
                except queue.Empty:
                    if interrupted:  # a step that does not come back: stop without it
                        break
                    continue
                item = running[key]
                if kind == "event":
                    item.events.append(payload)
                    yield payload
                    active.handle_event(payload)
                    continue
                del running[key]
                if isinstance(payload, DagsterExecutionInterruptedError | KeyboardInterrupt):
                    interrupted = True
                elif payload is not None and failure is None:
                    failure = payload  # a framework error, raised once the others finish
                if not interrupted:
                    active.verify_complete(job_context, key)
                    for event in active.plan_events_iterator(job_context):
                        item.events.append(event)
                        yield event
                    yield from _trigger_hook(item.step_context, item.events)
    if failure is not None:
        raise failure
    if interrupted:
        raise DagsterExecutionInterruptedError()


class ThreadedExecutor(Executor):
    """Steps of a run side by side on threads of the run's process (module docstring)."""

    def __init__(
        self,
        retries: RetryMode,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        step_dependency_config: StepDependencyConfig | None = None,
        loads_at_once: int = DEFAULT_LOADS_AT_ONCE,
        checks_at_once: int = DEFAULT_CHECKS_AT_ONCE,
        pulls_at_once: int = DEFAULT_PULLS_AT_ONCE,
    ) -> None:
        limits = {
            "max_concurrent": max_concurrent,
            "loads_at_once": loads_at_once,
            "checks_at_once": checks_at_once,
            "pulls_at_once": pulls_at_once,
        }
        for name, value in limits.items():
            if value < 1:
                raise ValueError(
                    f"executor config {name} must be at least 1, got {value}: "
                    f"set execution.config.{name} to 1 (one at a time) or more"
                )
        self._loads_at_once = loads_at_once
        self._checks_at_once = checks_at_once
        self._pulls_at_once = pulls_at_once
        self._retries = retries
        self._max_concurrent = max_concurrent
        self._step_dependency_config = step_dependency_config or StepDependencyConfig.default()

    @property
    def retries(self) -> RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._step_dependency_config

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        keys = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()}), up to {self._max_concurrent} at "
            "once on threads",
            event_specific_data=EngineEventData.in_process(os.getpid(), keys),
        )
        yield from iter(
            ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=partial(
                    threaded_plan_iterator,
                    max_concurrent=self._max_concurrent,
                    loads_at_once=self._loads_at_once,
                    checks_at_once=self._checks_at_once,
                    pulls_at_once=self._pulls_at_once,
                ),
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                    step_dependency_config=self._step_dependency_config,
                ),
            )
        )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), keys),
        )


@dg.executor(
    name="in_process_threads",
    config_schema={
        "retries": get_retries_config(),
        "max_concurrent": dg.Field(
            int,
            default_value=DEFAULT_MAX_CONCURRENT,
            description="Steps running at once (1: one after another, as in_process).",
        ),
        "loads_at_once": dg.Field(
            int,
            default_value=DEFAULT_LOADS_AT_ONCE,
            description=f"Of those, steps tagged `{LOAD_TAG}` (the loads) at once.",
        ),
        "checks_at_once": dg.Field(
            int,
            default_value=DEFAULT_CHECKS_AT_ONCE,
            description=f"Of those, steps tagged `{GX_TAG}` (the GX checks) at once.",
        ),
        "pulls_at_once": dg.Field(
            int,
            default_value=DEFAULT_PULLS_AT_ONCE,
            description=f"Of those, steps tagged `{PULL_TAG}` (pulls in processes of their "
            "own) at once.",
        ),
    },
)
def threaded_executor(init_context: InitExecutorContext) -> ThreadedExecutor:
    """Run a run's steps in its one process, up to `max_concurrent` at once on threads."""
    config = init_context.executor_config
    return ThreadedExecutor(
        retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]
        max_concurrent=int(config["max_concurrent"]),  # type: ignore[arg-type]
        loads_at_once=int(config["loads_at_once"]),  # type: ignore[arg-type]
        checks_at_once=int(config["checks_at_once"]),  # type: ignore[arg-type]
        pulls_at_once=int(config["pulls_at_once"]),  # type: ignore[arg-type]
    )


def execute_in_process_threaded(
    job_def: dg.JobDefinition,
    *,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """`JobDefinition.execute_in_process` (this process, the same result) with the steps on
    threads: Dagster's own call always runs them one at a time, whatever the job's executor.
    `orderpulse demo` runs the whole graph so. `run_config`'s `execution.config.max_concurrent`
    sets the number (default 4)."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import core_execute_in_process

    selection = list(asset_selection or [])
    job = job_def.as_ephemeral_job(
        resource_defs={}, input_values={}, asset_selection=selection or None
    ).with_executor_def(threaded_executor)
    return core_execute_in_process(
        run_config=dict(run_config or {}),
        job=InMemoryJob(job),
        instance=instance,
        output_capturing_enabled=True,
        raise_on_error=raise_on_error,
        run_tags={**job_def.run_tags, **(tags or {})},
        run_id=run_id,
        asset_selection=frozenset(selection),
    )
