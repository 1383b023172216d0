"""Run a Great Expectations suite of `gx/expectations/` on a warehouse table, in PostgreSQL.

`validator_for(pg_url)` gives one ephemeral GX context per warehouse URL and process, with a
SQL datasource on the warehouse: every expectation becomes a query that PostgreSQL answers
(counts, min/max, the first failing rows), no table is pulled into Python. `validate(target,
parameters, run_id=...)` checks the rows a run wrote (raw rows by their `run_id`, dbt
incremental rows by `_written_xid` since the model's latest build) or every row when the
target's scope is `all` or no run is named, and returns a `SuiteResult`: passed, each
expectation's observed values and a few failing rows by their keys (phone-like digits
masked; the checked columns never include names or addresses).

GX answers a suite with many queries (row count, null count, each expectation's counts): they
all read one exported PostgreSQL snapshot, so rows a push writes meanwhile cannot make the
counts disagree (66 rows counted, 67 not null: GX then fails the expectation).

Nothing is written to the repository or the working directory: the context lives in memory and
reads the suites' JSON. Great Expectations is imported on first use only (seconds of import).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from quality.expectations.targets import CheckTarget

GX_DIR = Path(__file__).resolve().parent / "gx"
SUITES_DIR = GX_DIR / "expectations"

LOADED_AT_MARGIN = timedelta(minutes=10)
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PHONE = re.compile(r"(?<!\d)(1\d{2})\d{4}(\d{4})(?!\d)")
# the snapshot GX's queries of the current validation read (set by `Validator._snapshot`)
_SNAPSHOT: contextvars.ContextVar[str | None] = contextvars.ContextVar("gx_snapshot", default=None)
_SNAPSHOT_ID = re.compile(r"^[0-9A-F-]+$")
# the `select` of the rows the current validation reads, exactly as GX was given it
_SCOPE_QUERY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gx_scope_query", default=None
)


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.json"))


@cache
def suite_json(name: str) -> dict[str, Any]:
    """A suite as stored (plain JSON; no GX import)."""
    return json.loads((SUITES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def mask(value: Any) -> Any:
    """A sample value fit for metadata: mobile numbers as `138****5678`, times as ISO text."""
    if isinstance(value, str):
        return _PHONE.sub(r"\1****\2", value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


@dataclass
class ExpectationOutcome:
    expectation: str  # type(column)
    success: bool
    why: str
    observed: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class SuiteResult:
    suite: str
    relation: str
    scope: str  # "run <id>", "rows written since xid N", "all rows"
    success: bool
    rows_checked: int | None
    seconds: float
    outcomes: list[ExpectationOutcome]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        where = f"{self.suite} on {self.relation} ({self.scope})"
        if self.success:
            return f"{where}: all {len(self.outcomes)} passed"
        names = ", ".join(o.expectation for o in self.failed)
        return f"{where}: {len(self.failed)} failed: {names}"

    def as_dict(self) -> dict[str, Any]:
        return mask(asdict(self))


# the build register dbt's pre-hook writes (`register_build` in dbt_project/macros/
# incremental.sql), keyed `"<database>"."<schema>"."<name>"` (dbt's `this`)
_BUILD_XID_SQL = (
    "select built_xid from intermediate.model_builds "
    "where right(model, length(%(suffix)s)) = %(suffix)s order by built_at desc limit 1"
)
# expectations that hold for every row each on its own: over no rows they all pass
_PER_ROW = re.compile(r"^expect_(column_values_to_|compound_columns_to_be_unique$)")


def latest_build_xid(cursor: Any, relation: str) -> int | None:
    """`_written_xid` of the latest dbt build of `relation` (None: never registered), on a
    DB-API cursor."""
    schema, name = relation.split(".")
    cursor.execute(_BUILD_XID_SQL, {"suffix": f'."{schema}"."{name}"'})
    found = cursor.fetchone()
    return None if found is None else int(found[0])


def older_rows_exist(cursor: Any, relation: str, since: int) -> bool:
    """Whether `relation` (a table with a `_written_xid` index) holds a row written before
    transaction `since`, on a DB-API cursor: one probe of the index's low end."""
    cursor.execute(f"select exists (select from {relation} where _written_xid < %s)", [since])
    return bool(cursor.fetchone()[0])


def scoped_query(
    target: CheckTarget,
    run_id: str | None,
    started: datetime | None,
    build_start_xid: Callable[[str], int | None],
    older_rows: Callable[[str, int], bool] | None = None,
) -> tuple[str, str]:
    """The `select` of the rows a check validates and how they were chosen: the rows `run_id`
    wrote (raw: by `run_id`; dbt incremental models: by `_written_xid` since the model's latest
    build), or every row when no run is named or the target reads all.

    A build that wrote every row of its table (a first build, a full refresh) is read whole,
    without the `_written_xid` condition (`older_rows` says whether it did): with it each of
    GX's queries read a table written minutes before through that index, a heap fetch per row
    before autovacuum has set the visibility map (fct_orders at 1,000,000 orders: 8.0 s in a
    backfill's check, against 1.2 s read whole)."""
    if run_id is None or target.scope == "all":
        return target.select, "all rows"
    if target.scope == "run_id":
        if not _RUN_ID.match(run_id):
            raise ValueError(f"run id {run_id!r} is not a Dagster run id")
        where = f"t.run_id = '{run_id}'"
        if started is not None:
            # rows are stamped by the database's clock: allow for skew with the run's
            since = (started - LOADED_AT_MARGIN).isoformat()
            where += f" and t.loaded_at >= '{since}'::timestamptz"
        return f"{target.select} where {where}", f"rows of run {run_id}"
    since = build_start_xid(target.since or target.relation)
    if since is None:
        return target.select, "all rows"
    if target.since is None and older_rows is not None and not older_rows(target.relation, since):
        return target.select, f"rows written since xid {since}: every row"
    return (
        f"{target.select} where t._written_xid >= {since}",
        f"rows written since xid {since}",
    )


def passes_when_empty(suite: str) -> bool:
    """Whether every expectation of `suite` is about single rows (values, unique keys), so
    that it passes over no rows; a row count or a column's maximum does not."""
    return all(_PER_ROW.match(e["type"]) for e in suite_json(suite)["expectations"])


def empty_result(target: CheckTarget, scope: str) -> SuiteResult:
    """The result of a per-row suite over no rows, without Great Expectations (seconds of
    import): every expectation passed, nothing observed."""
    outcomes = [
        ExpectationOutcome(
            expectation=_describe_json(e),
            success=True,
            why=(e.get("meta") or {}).get("why", ""),
            observed={"element_count": 0},
        )
        for e in suite_json(target.suite)["expectations"]
    ]
    return SuiteResult(
        suite=target.suite,
        relation=target.relation,
        scope=f"{scope}: none",
        success=True,
        rows_checked=0,
        seconds=0.0,
        outcomes=outcomes,
    )


def _describe(config: Any) -> str:
    return _describe_json({"type": config.type, "kwargs": config.kwargs})


def _describe_json(expectation: Mapping[str, Any]) -> str:
    """`type(column)` of an expectation as its suite stores it."""
    kwargs = expectation.get("kwargs") or {}
    column = kwargs.get("column") or ",".join(kwargs.get("column_list") or [])
    return f"{expectation['type']}({column})" if column else expectation["type"]


_OBSERVED = ("observed_value", "element_count", "unexpected_count", "unexpected_percent",
             "missing_count")  # fmt: skip


def _samples(res: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Failing rows by their keys and checked value; compound-key expectations give the key
    values themselves."""
    rows = res.get("partial_unexpected_index_list") or res.get("partial_unexpected_list") or []
    return [mask(r if isinstance(r, Mapping) else {"value": r}) for r in rows[:n]]


def _outcome(result: Any, samples: int) -> ExpectationOutcome:
    res = result.result or {}
    exc = result.exception_info or {}
    error = exc.get("exception_message") if exc.get("raised_exception") else None
    return ExpectationOutcome(
        expectation=_describe(result.expectation_config),
        success=bool(result.success),
        why=(result.expectation_config.meta or {}).get("why", ""),
        observed={k: mask(res[k]) for k in _OBSERVED if k in res},
        samples=_samples(res, samples) if not result.success else [],
        error=error,
    )


@cache
def _listen_for_snapshots() -> None:
    """Every transaction begun while a validation runs imports its snapshot. On the Engine
    class: GX's execution engine makes SQLAlchemy engines of its own."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def _import_snapshot(conn: Any) -> None:
        snapshot = _SNAPSHOT.get()
        if snapshot is not None and conn.dialect.name == "postgresql":
            conn.exec_driver_sql("set transaction isolation level repeatable read")
            conn.exec_driver_sql(f"set transaction snapshot '{snapshot}'")

    def _columns_only(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        # GX learns a query asset's column names by running the bare query (its column
        # reflection fallback): every row of the scope came into this process to be dropped
        # (fct_order_items at 1,763,194 lines: 1.6 of the check's 3.5 s). Its names come
        # from no rows just the same.
        query = _SCOPE_QUERY.get()
        if query is not None and statement == query:
            statement = f"select * from ({query}) as columns_only limit 0"
        return statement, parameters

    event.listen(Engine, "begin", _import_snapshot)
    event.listen(Engine, "before_cursor_execute", _columns_only, retval=True)


class Validator:
    """One in-memory GX context with a SQL datasource on the warehouse."""

    def __init__(self, pg_url: str) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        # the repository's context settings, with in-memory stores instead of its folders
        settings = yaml.safe_load((GX_DIR / "great_expectations.yml").read_text("utf-8"))
        config = DataContextConfig(
            analytics_enabled=bool(settings.get("analytics_enabled", False)),
            progress_bars=ProgressBarsConfig(**(settings.get("progress_bars") or {})),
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        )
        self._context = gx.get_context(mode="ephemeral", project_config=config)
        # SQLAlchemy maps a bare postgresql:// to psycopg 3 already; say it for older versions
        url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", pg_url)
        self._source = self._context.data_sources.add_sql("warehouse", connection_string=url)
        _listen_for_snapshots()
        self._suites: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._seq = 0

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Export a snapshot from a transaction held open while GX's queries import it."""
        engine = self._source.get_execution_engine().engine
        with engine.connect() as holder:
            holder.exec_driver_sql("set transaction isolation level repeatable read")
            snapshot = holder.exec_driver_sql("select pg_export_snapshot()").scalar_one()
            if not _SNAPSHOT_ID.match(snapshot):
                raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
            token = _SNAPSHOT.set(snapshot)
            try:
                yield
            finally:
                _SNAPSHOT.reset(token)
                holder.rollback()

    def _suite(self, name: str) -> Any:
        from great_expectations.core.expectation_suite import ExpectationSuite

        if name not in self._suites:
            body = suite_json(name)
            self._suites[name] = ExpectationSuite(
                name=body["name"], expectations=body["expectations"], meta=body.get("meta")
            )
        return self._suites[name]

    def _on_cursor(self, query: Callable[..., Any], *args: Any) -> Any:
        """`query(cursor, *args)` on a DB-API cursor of a pooled connection, given back after."""
        raw = self._source.get_engine().raw_connection()
        try:
            return query(raw.cursor(), *args)
        finally:
            raw.close()

    def build_start_xid(self, relation: str) -> int | None:
        """`_written_xid` of the latest dbt build of `relation` (None: never registered)."""
        return self._on_cursor(latest_build_xid, relation)

    def older_rows(self, relation: str, since: int) -> bool:
        """Whether `relation` holds rows written before transaction `since`."""
        return self._on_cursor(older_rows_exist, relation, since)

    def validate(
        self,
        target: CheckTarget,
        parameters: Mapping[str, Any],
        *,
        run_id: str | None = None,
        run_started_at: datetime | None = None,
        sample_rows: int = 5,
    ) -> SuiteResult:
        """Validate `target`'s suite on the rows `run_id` wrote (every row without one).
        `run_started_at` lets PostgreSQL find a run's raw rows by the `loaded_at` index."""
        started = time.perf_counter()
        query, scope = scoped_query(
            target, run_id, run_started_at, self.build_start_xid, self.older_rows
        )

        def result_format(samples: int) -> dict[str, Any]:
            found: dict[str, Any] = {
                "result_format": "SUMMARY",
                "partial_unexpected_count": samples,
                "return_unexpected_index_query": False,
            }
            if target.keys:
                found["unexpected_index_column_names"] = list(target.keys)
            return found

        with self._lock:
            self._seq += 1
            asset_name = f"{target.suite}_{self._seq}"
        asset = self._source.add_query_asset(asset_name, query=query)
        scope_token = _SCOPE_QUERY.set(query)
        try:
            with self._snapshot():
                batch = asset.add_batch_definition_whole_table("rows").get_batch()
                # Counts first, with no sample rows: GX still asks for each expectation's
                # failing values and rows, but with `limit 0` PostgreSQL answers without a
                # scan (fct_orders at 1,000,000 orders: 9.3 s -> 3.4 s). Samples only when
                # something failed, from the same snapshot.
                for samples in (0, max(sample_rows, 1)):
                    run = batch.validate(
                        self._suite(target.suite),
                        expectation_parameters=dict(parameters),
                        result_format=result_format(samples),
                    )
                    if run.success:
                        break
        finally:
            _SCOPE_QUERY.reset(scope_token)
            self._source.delete_asset(asset_name)
        outcomes = [_outcome(r, sample_rows) for r in run.results]
        counts = [o.observed.get("element_count") for o in outcomes]
        return SuiteResult(
            suite=target.suite,
            relation=target.relation,
            scope=scope,
            success=bool(run.success),
            rows_checked=next((c for c in counts if c is not None), None),
            seconds=round(time.perf_counter() - started, 3),
            outcomes=outcomes,
        )


_validators: dict[str, Validator] = {}
_validators_lock = threading.Lock()


def validator_for(pg_url: str) -> Validator:
    """The process's validator for this warehouse (GX import and context set up once)."""
    with _validators_lock:
        if pg_url not in _validators:
            _validators[pg_url] = Validator(pg_url)
        return _validators[pg_url]
