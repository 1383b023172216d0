"""Fixtures of the dbt tests: a database of their own on the session's PostgreSQL, raw rows from
the sandbox's renderings, and `dbt` run as a subprocess the way Dagster and `make` run it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from kernel.database import PgConn
from orchestration.resources import ensure_owned_tables
from sandbox.model import Order
from sandbox.world import World
from tests import databases
from tests.dbt.sample_raw import (
    available_channels,
    load_merchant_systems_records,
    load_sample_orders,
    orders_for,
    small_world,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")

DbtRunner = Callable[..., subprocess.CompletedProcess]


# dbt parses the whole project again (12 s here, 3 s partially) unless the partial-parse file
# in its target folder was saved for the same connection (database name included) and the
# same --vars. So the scratch databases take names from a small pool (the same names come back
# test after test on a session's server) and each parse is kept here, per connection and vars,
# for the next target folder: a build still runs every node, only the parse is not repeated.
PARTIAL_PARSE = "partial_parse.msgpack"
_parses: dict[str, bytes] = {}


def _parse_key(conn: PgConn, args: tuple[str, ...]) -> str:
    """What dbt's partial-parse check compares that differs between test runs."""
    cli_vars = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--vars"]
    facts = (conn.host, conn.port, conn.user, conn.password, conn.dbname, cli_vars)
    return hashlib.sha256(repr(facts).encode()).hexdigest()


def run_dbt(
    conn: PgConn, target_path: Path, *args: str, check: bool = True, ensure_tables: bool = True
) -> subprocess.CompletedProcess:
    """`dbt <args>` against `conn`, writing artifacts under `target_path`; fails the test with
    dbt's output when dbt fails (unless `check` is false). Like every OrderPulse entry point,
    it first creates the tables dbt reads but does not own (raw orders, ops decisions), unless
    `ensure_tables` is false (their DDL waits for a load still open)."""
    if ensure_tables:
        with psycopg.connect(conn.url()) as db:
            ensure_owned_tables(db)
    env = {
        **os.environ,
        **conn.env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(target_path / "logs"),
    }
    target = target_path / "target"
    key = _parse_key(conn, args)
    if key in _parses:
        target.mkdir(parents=True, exist_ok=True)
        (target / PARTIAL_PARSE).write_bytes(_parses[key])
    result = subprocess.run(
        [
            str(DBT),
            *args,
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(PROJECT),
            "--target-path",
            str(target),
        ],  # fmt: skip
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if (target / PARTIAL_PARSE).exists():
        _parses[key] = (target / PARTIAL_PARSE).read_bytes()
    if check and result.returncode != 0:
        output = f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
        pytest.fail(f"dbt {' '.join(args)} failed:\n{output}")
    return result


def new_database(pg: PgConn, template: PgConn | None = None) -> PgConn:
    """A fresh database for one dbt build (dbt creates its schemas), or a copy of `template`,
    named from a pool: the lowest `dbt_<n>` not in use on the server, so that its dbt parse
    can be reused."""
    copy = f' template "{template.dbname}"' if template else ""
    with psycopg.connect(pg.url(dbname="postgres"), autocommit=True) as admin:
        n = 1
        while True:
            try:
                admin.execute(f'create database "dbt_{n}"{copy}')
            except psycopg.errors.DuplicateDatabase:
                n += 1
                continue
            return PgConn(pg.host, pg.port, pg.user, pg.password, f"dbt_{n}")


drop_database = databases.drop_database


@pytest.fixture(scope="session")
def world() -> World:
    """A generated world: realistic orders with anomaly labels and the merchant's records."""
    return small_world()


@pytest.fixture(scope="session")
def sample_orders_all(world: World) -> list[Order]:
    """20 orders per channel whose rendering exists (every lifecycle twice) plus the world's."""
    channels = set(available_channels())
    return orders_for(sorted(channels), 20) + [o for o in world.orders if o.channel in channels]


@pytest.fixture(scope="session")
def built_dbt_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the `built_template` build keeps its artifacts (target/manifest.json)."""
    return tmp_path_factory.mktemp("dbt")


@pytest.fixture(scope="session")
def built_template(
    pg: PgConn,
    sample_orders_all: list[Order],
    world: World,
    built_dbt_path: Path,
) -> Iterator[PgConn]:
    """A database holding the orders and the world's merchant records in `raw`, after one
    `dbt build`: made once per session (per xdist worker) and never connected to again, so
    that each module copies it (`built_warehouse`) instead of loading and building again."""
    conn = new_database(pg)
    with psycopg.connect(conn.url()) as db:
        load_sample_orders(db, sample_orders_all)
        load_merchant_systems_records(db, world)
    run_dbt(conn, built_dbt_path, "build")
    yield conn
    drop_database(pg, conn)


@pytest.fixture(scope="module")
def built_warehouse(pg: PgConn, built_template: PgConn) -> Iterator[PgConn]:
    """The module's own copy of `built_template` (a module may change it): PostgreSQL copies
    the database's files, about a second, where loading and building took half a minute."""
    conn = new_database(pg, template=built_template)
    yield conn
    drop_database(pg, conn)
