"""The Great Expectations suites of `quality/expectations/` as Dagster asset checks.

One check per suite and asset, named `gx_<suite>`:
- `raw/<channel>_orders`: `gx_raw_orders` (ERROR, blocking: keys, channel, times of the rows
  the run loaded; bad rows here reach routing and risk) and `gx_raw_orders_volume` (WARN:
  row-count change since the last check, freshness within the channel's quiet time);
- `raw/<merchant table>`: `gx_raw_<table>` (WARN: keys, times, payload enums);
- `raw/risk_feedback`: `gx_raw_risk_feedback` (WARN: keys, kinds, verdicts, times of the
  chargebacks and audits the learned risk score trains on);
- `intermediate/int_orders_awaiting_allocation`: ERROR, blocking: the routing decision's input
  (a view: a run checks the rows of the orders `int_orders`' latest build wrote);
- `marts/fct_orders`, `marts/order_holographic`, `marts/fct_order_items` (items -> orders):
  WARN.
A check validates the rows its asset's latest materialisation wrote when that was in this run
(raw rows by run id, dbt incremental rows by `_written_xid`), every row otherwise (a checks-only
run). Failing expectations, observed values and masked sample rows go in the metadata. Great
Expectations is imported inside the check, never when the definitions load, and not at all
when the run wrote no row for a suite of per-row expectations (it passes over no rows).
"""

import importlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from connectors.channels_config import load_channels
from connectors.merchant_systems import SOURCES
from orchestration.ingest.assets import orders_asset_key
from orchestration.resources import WarehouseResource
from orchestration.threaded_executor import GX_OP_TAGS
from quality.expectations import targets
from quality.expectations.runner import SuiteResult, suite_json
from quality.expectations.targets import CheckTarget

CHECK_PREFIX = "gx_"
# models whose bad rows would mislead a decision (routing, risk): their checks block
AWAITING_ALLOCATION = dg.AssetKey(["intermediate", "int_orders_awaiting_allocation"])
MART_KEYS = {relation: dg.AssetKey(relation.split(".")) for relation in targets.MART_TARGETS}
BLOCKING_MARTS = {AWAITING_ALLOCATION}
RISK_FEEDBACK = dg.AssetKey(["raw", "risk_feedback"])


def check_name(target: CheckTarget) -> str:
    return f"{CHECK_PREFIX}{target.suite}"


def _previous_row_count(context: dg.AssetCheckExecutionContext) -> int | None:
    """`row_count` of this check's latest completed evaluation in an earlier run."""
    check_key = context.check_specs[0].key
    history = context.instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=5
    )
    for record in history:
        if record.run_id == context.run.run_id or record.event is None:
            continue
        evaluation = record.event.dagster_event.event_specific_data  # AssetCheckEvaluation
        value = getattr(evaluation, "metadata", {}).get("row_count")
        if value is not None:
            return int(value.value)
    return None


def _run_scope(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey
) -> tuple[str | None, datetime | None]:
    """(run id, run start) when this run materialised the asset (check the rows it wrote),
    else (None, None): every row. Asked of the run's own events: in live mode a push sensor
    often materialises the asset again while the run is still going."""
    run_id = context.run.run_id
    events = context.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    if not any(r.asset_key == asset_key for r in events):
        return None, None
    record = context.instance.get_run_record_by_id(run_id)
    started = record.start_time if record is not None else None
    return run_id, (datetime.fromtimestamp(started, UTC) if started else None)


def _nothing_to_validate(
    warehouse: WarehouseResource,
    target: CheckTarget,
    run_id: str | None,
    started: datetime | None,
) -> SuiteResult | None:
    """The passing result of a per-row suite when the run wrote no row in its scope (a pull
    that found nothing new, a build with no changed row), else None: validate. Asked of
    PostgreSQL directly, so such a run never imports Great Expectations (6.5 s on an idle
    2-core host, in every run process that validates)."""
    from quality.expectations.runner import (
        empty_result,
        latest_build_xid,
        passes_when_empty,
        scoped_query,
    )

    if run_id is None or target.scope == "all" or not passes_when_empty(target.suite):
        return None
    with warehouse.connect() as conn:
        query, scope = scoped_query(
            target, run_id, started, lambda relation: latest_build_xid(conn.cursor(), relation)
        )
        found = conn.execute(f"select exists ({query})").fetchone()[0]
    return None if found else empty_result(target, scope)


def _metadata(result: SuiteResult) -> dict[str, Any]:
    rows = [
        f"| {'✅' if o.success else '❌'} | `{o.expectation}` | {o.why} | "
        f"{', '.join(f'{k}={v}' for k, v in o.observed.items())} |"
        for o in result.outcomes
    ]
    table = "| ok | expectation | why | observed |\n|---|---|---|---|\n" + "\n".join(rows)
    meta: dict[str, Any] = {
        "suite": result.suite,
        "relation": result.relation,
        "scope": result.scope,
        "expectations": dg.MetadataValue.int(len(result.outcomes)),
        "failed": dg.MetadataValue.int(len(result.failed)),
        "seconds": dg.MetadataValue.float(result.seconds),
        "results": dg.MetadataValue.md(table),
        "failed_expectations": dg.MetadataValue.json(
            [
                {
                    "expectation": o.expectation,
                    "why": o.why,
                    "observed": o.observed,
                    "samples": o.samples,
                    **({"error": o.error} if o.error else {}),
                }
                for o in result.failed
            ]
        ),
    }
    if result.rows_checked is not None:
        meta["rows_checked"] = dg.MetadataValue.int(int(result.rows_checked))
    for o in result.outcomes:
        if o.expectation == "expect_table_row_count_to_be_between":
            meta["row_count"] = dg.MetadataValue.int(int(o.observed["observed_value"]))
    return meta


def run_expectation_check(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    asset_key: dg.AssetKey,
    target: CheckTarget,
    severity: dg.AssetCheckSeverity,
    now: datetime,
) -> dg.AssetCheckResult:
    from quality.expectations.rules import load_data_check_rules, parameters
    from quality.expectations.runner import validator_for

    run_id, started = _run_scope(context, asset_key)
    previous = None
    result = _nothing_to_validate(warehouse, target, run_id, started)
    if result is None:
        rules = load_data_check_rules()
        if target.suite == "raw_orders_volume":
            previous = _previous_row_count(context)
        params = parameters(rules, now, channel=target.channel, previous_row_count=previous)
        validator = validator_for(warehouse.conn_facts.url())
        result = validator.validate(
            target, params, run_id=run_id, run_started_at=started, sample_rows=rules.sample_rows
        )
    context.log.info(result.summary())
    meta = _metadata(result)
    if previous is not None:
        meta["previous_row_count"] = dg.MetadataValue.int(previous)
    return dg.AssetCheckResult(
        passed=result.success,
        severity=severity,
        metadata=meta,
        description=result.summary(),
    )


_warm_up_lock = threading.Lock()
_warm_up: threading.Thread | None = None


def import_great_expectations_in_background() -> threading.Thread:
    """Start importing Great Expectations on a thread of this run's process (once): a dbt
    step calls it when a GX check comes after it in the run, so the import (6.5 s on an idle
    2-core host) overlaps dbt's build in its own process instead of delaying the check, which
    in live mode stands between the decisions' input and routing."""
    global _warm_up
    with _warm_up_lock:
        if _warm_up is None:
            _warm_up = threading.Thread(
                target=importlib.import_module,
                args=("great_expectations",),
                name="import-great-expectations",
                daemon=True,
            )
            _warm_up.start()
        return _warm_up


def start_import_if_checked(run: dg.DagsterRun) -> threading.Thread | None:
    """The import started by a run's first steps (its pulls, its dbt steps) when a GX check
    comes later in it: in the cycle of 10,000 orders on 1 M the first check (the behaviour
    log's, after the pulls) spent 2.8 of its 2.9 s importing. None without a GX check."""
    return import_great_expectations_in_background() if runs_expectation_checks(run) else None


def runs_expectation_checks(run: dg.DagsterRun) -> bool:
    """Whether `run` has a GX check among its selected checks (None: all of its job's)."""
    selected = run.asset_check_selection
    return selected is None or any(k.name.startswith(CHECK_PREFIX) for k in selected)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def expectation_check(
    asset_key: dg.AssetKey,
    target: CheckTarget,
    *,
    blocking: bool,
    clock: Callable[[], datetime] = _wall_clock,
) -> dg.AssetChecksDefinition:
    """`gx_<suite>` on `asset_key`: ERROR and blocking, or WARN. `clock` gives the "now"
    that future timestamps and freshness are measured from."""
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    notes = suite_json(target.suite).get("notes", "")

    @dg.asset_check(
        asset=asset_key,
        name=check_name(target),
        blocking=blocking,
        op_tags=GX_OP_TAGS,
        description=f"Great Expectations suite `{target.suite}` on {target.relation}: {notes}",
        metadata={"suite": target.suite, "severity": severity.value},
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        return run_expectation_check(context, warehouse, asset_key, target, severity, clock())

    return _check


def expectation_checks() -> list[dg.AssetChecksDefinition]:
    """Every suite on its asset (channels from config/channels.yaml, the merchant tables
    from the connectors' list)."""
    checks = []
    for channel in load_channels().channels:
        key = orders_asset_key(channel)
        checks.append(expectation_check(key, targets.raw_orders(channel), blocking=True))
        checks.append(expectation_check(key, targets.raw_orders_volume(channel), blocking=False))
    for source in SOURCES:
        checks.append(
            expectation_check(
                dg.AssetKey(["raw", source.table]),
                targets.merchant_table(source.table),
                blocking=False,
            )
        )
    checks.append(expectation_check(RISK_FEEDBACK, targets.risk_feedback(), blocking=False))
    for relation, target in targets.MART_TARGETS.items():
        key = MART_KEYS[relation]
        checks.append(expectation_check(key, target, blocking=key in BLOCKING_MARTS))
    return checks
