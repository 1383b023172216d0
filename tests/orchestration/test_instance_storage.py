"""dagster.yaml keeps run, event and schedule storage in the warehouse's PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy

from kernel import runtime
from kernel.settings import Settings
from orchestration.instance_storage import POOL_SIZE


@dg.asset
def tiny_asset() -> int:
    return 1


@pytest.fixture()
def settings(pg, op_home: Path) -> Iterator[Settings]:
    """The session home prepared as every entry point prepares it (dagster.yaml, env vars);
    the environment as it was afterwards."""
    saved = dict(os.environ)
    settings = Settings(home=op_home, pg_url=os.environ.get("ORDERPULSE_TEST_PG_URL"))
    runtime.prepare(settings)
    yield settings
    os.environ.clear()
    os.environ.update(saved)


def test_runs_are_recorded_in_postgres(pg, settings: Settings) -> None:
    yaml_text = (settings.dagster_home / "dagster.yaml").read_text()
    assert "ORDERPULSE_DAGSTER_PG_URL" in yaml_text and pg.password not in yaml_text
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    # a run failed outside its steps (e.g. dequeued while the code server was busy) is
    # launched again once, a failed step is not; the code server gets 180 s to answer
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    assert not instance.run_retries_retry_on_asset_or_op_failure
    assert os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] == "180"
    result = dg.materialize([tiny_asset], instance=instance)
    assert result.success
    with psycopg.connect(os.environ["ORDERPULSE_DAGSTER_PG_URL"].replace("+psycopg2", "")) as c:
        found = c.execute("select count(*) from runs where run_id = %s", [result.run_id])
        assert found.fetchone()[0] == 1
    instance.dispose()


def test_storage_reuses_connections_and_reconnects_after_a_drop(settings: Settings) -> None:
    """dagster-postgres alone opens a connection per storage call (hundreds per run); ours
    keeps a few per storage, and a connection the server dropped (a restart) is replaced on
    the next call instead of failing it."""
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    storages = [instance.run_storage, instance.event_log_storage, instance.schedule_storage]
    opened: list[str] = []
    for storage in storages:
        sqlalchemy.event.listen(
            storage._engine,
            "connect",
            lambda *_, name=type(storage).__name__: opened.append(name),
        )
    result = dg.materialize([tiny_asset], instance=instance)
    assert result.success
    stored = len(instance.all_logs(result.run_id))
    assert stored >= 10, stored
    assert len(opened) <= 3 * POOL_SIZE, opened  # none if an earlier instance warmed the pools

    url = os.environ["ORDERPULSE_DAGSTER_PG_URL"].replace("+psycopg2", "")
    with psycopg.connect(url, autocommit=True) as c:
        dropped = c.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert dropped >= 1
    before = len(opened)
    again = dg.materialize([tiny_asset], instance=instance)
    assert again.success
    assert len(instance.all_logs(again.run_id)) >= 10
    assert 1 <= len(opened) - before <= 3 * POOL_SIZE
    instance.dispose()


def test_later_instances_of_a_process_share_its_connections(settings: Settings) -> None:
    """The code server builds an instance for every sensor evaluation: after the first, an
    instance neither checks the tables again nor opens connections of its own."""
    first = dg.DagsterInstance.from_config(str(settings.dagster_home))
    assert first.get_runs(limit=1) is not None  # a connection in each pool
    engines = [first.run_storage._engine, first.event_log_storage._engine,
               first.schedule_storage._engine]  # fmt: skip
    opened: list[str] = []
    for engine in engines:
        sqlalchemy.event.listen(engine, "connect", lambda *_: opened.append("connect"))
    later = dg.DagsterInstance.from_config(str(settings.dagster_home))
    storages = [later.run_storage, later.event_log_storage, later.schedule_storage]
    assert [s._engine for s in storages] == engines
    assert not any(s.should_autocreate_tables for s in storages)  # no reflection of tables
    result = dg.materialize([tiny_asset], instance=later)
    assert result.success and later.get_run_by_id(result.run_id) is not None
    assert first.get_run_by_id(result.run_id) is not None
    assert len(opened) <= 2, opened  # the pools' second connections at most

    # the catalog is asked whether a table exists until it does, then never again
    statements: list[str] = []
    for engine in engines:
        sqlalchemy.event.listen(
            engine, "before_cursor_execute", lambda _c, _r, text, *_: statements.append(text)
        )
    schedule, events = later.schedule_storage, later.event_log_storage
    assert schedule.has_instigators_table() and schedule.has_secondary_index_table()
    assert events.has_table("asset_check_executions")
    asked = len(statements)
    for _ in range(3):
        assert schedule.has_instigators_table() and schedule.has_secondary_index_table()
        assert events.has_table("asset_check_executions")
    assert len(statements) == asked, statements[asked:]
    assert not events.has_table("no_such_table")  # a "no" is asked again
    assert not events.has_table("no_such_table")
    assert len(statements) >= asked + 2
    later.dispose()
    first.dispose()
