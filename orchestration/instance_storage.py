"""Dagster's run, event-log and schedule storage in PostgreSQL, on pooled connections.

`dagster-postgres` opens a new connection for every storage call (SQLAlchemy's `NullPool`);
only the webserver pools. Over TCP with SCRAM password auth a connection costs ~8 ms and
~4.5 ms of client CPU here, and a run stores every event with a few calls: a 20,000-order demo
run opened ~6,800 connections, the daemon's one-second push sensors a few every second. Each
storage here keeps up to `POOL_SIZE` connections open per process and checks one is alive
before handing it out, so a restarted server costs one reconnect, not a failed call.

dagster.yaml names this class (`storage: custom:`, written by `kernel/runtime.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

# Connections kept open per storage and process; more are opened when threads need them at
# once (the daemon's sensor threads) and closed again when returned (no wait, no cap).
POOL_SIZE = 2


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose three storages reuse their connections."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            unpooled = storage._engine
            storage._engine = create_pg_engine(
                postgres_url,
                token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=POOL_SIZE,
                max_overflow=-1,
                pool_pre_ping=True,
            )
            unpooled.dispose()

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
