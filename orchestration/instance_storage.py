"""Dagster's run, event-log and schedule storage in PostgreSQL, on pooled connections.

`dagster-postgres` opens a new connection for every storage call (SQLAlchemy's `NullPool`);
only the webserver pools. Over TCP with SCRAM password auth a connection costs ~8 ms and
~4.5 ms of client CPU here, and a run stores every event with a few calls: a 20,000-order demo
run opened ~6,800 connections, the daemon's one-second push sensors a few every second. Each
storage here keeps up to `POOL_SIZE` connections open per process and checks one is alive
before handing it out, so a restarted server costs one reconnect, not a failed call.

The code server builds a new `DagsterInstance` for every sensor evaluation that has resources
or asks for the instance (the push sensors tick every second): each built three storages that
reflected their tables over three new connections, 45 % of the code server's CPU in live mode.
So a process checks the tables once (the first storage it builds creates or migrates them) and
its later storages share that first one's pooled engines. Dagster's SQL storages also ask the
catalog whether a table or column exists on ordinary calls (the daemon's sensor loop did on
every tick of every sensor: a quarter of its CPU); a "yes" is remembered here, as only a
migration adds them.

dagster.yaml names this class (`storage: custom:`, written by `kernel/runtime.py`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Connections kept open per storage and process; more are opened when threads need them at
# once (the daemon's sensor threads) and closed again when returned (no wait, no cap).
POOL_SIZE = 2

# pooled engines of this process by (pid, url): run, event-log and schedule storage
_ENGINES: dict[tuple[int, str], tuple[Engine, Engine, Engine]] = {}
_ENGINES_LOCK = threading.Lock()


# catalog questions whose "yes" never turns into a "no" while a process runs
_SCHEMA_CHECKS = {
    "run": ("has_run_stats_index_cols", "has_bulk_actions_selector_cols",
            "has_backfill_id_column", "has_bulk_action_job_name_column",
            "has_backfill_tags_table"),
    "event_log": ("has_table", "_has_asset_key_col_on_connection"),
    "schedule": ("has_instigators_table", "_has_instigators_table",
                 "_has_asset_daemon_asset_evaluations_table", "has_secondary_index_table"),
}  # fmt: skip


def _remember_yes(check: Callable[..., bool]) -> Callable[..., bool]:
    """`check`, asked again only until it says yes (per table or column name asked about)."""
    yes: set[tuple[str, ...]] = set()

    def remembered(*args: Any) -> bool:
        key = tuple(a for a in args if isinstance(a, str))  # the connection argument aside
        if key in yes:
            return True
        found = bool(check(*args))
        if found:
            yes.add(key)
        return found

    return remembered


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose three storages reuse their connections."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        key = (os.getpid(), postgres_url)
        with _ENGINES_LOCK:
            shared = _ENGINES.get(key)
            # tables checked (and created or migrated) by this process's first storage
            super().__init__(
                postgres_url, should_autocreate_tables and shared is None, inst_data, token_provider
            )
            storages = (self._run_storage, self._event_log_storage, self._schedule_storage)
            if shared is None:
                shared = tuple(
                    create_pg_engine(
                        postgres_url,
                        token_provider,
                        isolation_level="AUTOCOMMIT",
                        pool_size=POOL_SIZE,
                        max_overflow=-1,
                        pool_pre_ping=True,
                    )
                    for _ in storages
                )
                _ENGINES[key] = shared
        for storage, engine in zip(storages, shared, strict=True):
            unpooled = storage._engine
            storage._engine = engine
            unpooled.dispose()
        for storage, kind in zip(storages, ("run", "event_log", "schedule"), strict=True):
            for name in _SCHEMA_CHECKS[kind]:
                setattr(storage, name, _remember_yes(getattr(storage, name)))

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
