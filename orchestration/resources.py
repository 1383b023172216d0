"""Resources: the warehouse and the channel credentials, configured through `EnvVar`."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource
from packaging.version import Version

from kernel.database import PgConn


class WarehouseResource(dg.ConfigurableResource):
    """The OrderPulse PostgreSQL warehouse (schemas raw, staging, intermediate, marts, ops)."""

    pg_url: str

    @property
    def conn_facts(self) -> PgConn:
        return PgConn.from_url(self.pg_url)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.conn_facts.url(), application_name="orderpulse") as conn:
            yield conn

    def ensure_tables(self) -> None:
        """Create or migrate the tables OrderPulse's own code owns and dbt reads: every
        channel's `raw.<channel>_orders` (connectors) and the `ops` decision tables
        (fulfillment). Idempotent; dbt models read them, never create them."""
        with self.connect() as conn:
            ensure_owned_tables(conn)

    def dbt_env(self) -> dict[str, str]:
        """Connection env vars that dbt_project/profiles.yml reads."""
        return self.conn_facts.env()


class ChannelsResource(dg.ConfigurableResource):
    """Where channel credentials come from: env vars ORDERPULSE_<CHANNEL>_<FIELD>, else the
    sandbox's `sandbox.json` under ORDERPULSE_HOME (the embedded default)."""

    home: str
    http_timeout_seconds: float = 10.0
    max_attempts: int = 6

    @property
    def sandbox_file(self) -> Path:
        return Path(self.home) / "sandbox.json"

    @contextmanager
    def open_client(self, channel: str, cfg) -> Iterator:
        """A signed client for `channel` on the run's HTTP layer (connections kept per thread)."""
        from connectors.marketplace import open_client

        with open_client(
            channel, self.sandbox_file, timeout=self.http_timeout_seconds, page_size=cfg.page_size
        ) as client:
            yield client


def ensure_owned_tables(conn: psycopg.Connection) -> None:
    """The raw order tables of every channel in config/channels.yaml and the ops tables."""
    from connectors.channels_config import load_channels
    from connectors.raw_schema import ensure_raw_tables
    from fulfillment.ops_schema import ensure_ops_tables

    ensure_raw_tables(conn, list(load_channels().channels))
    ensure_ops_tables(conn)


class DbtResource(DbtCliResource):
    """dagster-dbt's CLI resource without two costs it adds to every run with a dbt step: it
    is told the dbt version instead of asking `dbt --version` (a second dbt process, 4-5 s of
    CPU on a 2-core host; `dbt_executable()` is always this venv's dbt, whose version is the
    installed dbt-core's), and it builds no dbt adapter in the step's process (below)."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        """No dbt adapter in the step's process: dagster-dbt builds one (profile, project,
        adapter plugin: 3.1 s on an idle 2-core host) for every `cli()` call only to serve
        `fetch_row_counts()` / `fetch_column_metadata()`, which OrderPulse does not use (row
        counts and column types come from orchestration/dbt/model_metadata.py)."""
        return None


def dbt_executable() -> str:
    """The dbt of this interpreter's venv (dagster-dbt would otherwise take whatever is on PATH),
    through `orderpulse-dbt` so that it dies with the step that started it
    (kernel/tied_child.py): a killed run leaves no dbt building on behind its retry."""
    for name in ("orderpulse-dbt", "dbt"):
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
    return "dbt"
