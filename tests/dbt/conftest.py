"""Fixtures of the dbt tests: a database of their own on the session's PostgreSQL, raw rows from
the sandbox's renderings, and `dbt` run as a subprocess the way Dagster and `make` run it."""

from __future__ import annotations

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


def run_dbt(
    conn: PgConn, target_path: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    """`dbt <args>` against `conn`, writing artifacts under `target_path`; fails the test with
    dbt's output when dbt fails (unless `check` is false). Like every OrderPulse entry point,
    it first creates the tables dbt reads but does not own (raw orders, ops decisions)."""
    with psycopg.connect(conn.url()) as db:
        ensure_owned_tables(db)
    env = {
        **os.environ,
        **conn.env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(target_path / "logs"),
    }
    result = subprocess.run(
        [
            str(DBT),
            *args,
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(PROJECT),
            "--target-path",
            str(target_path / "target"),
        ],  # fmt: skip
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        output = f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
        pytest.fail(f"dbt {' '.join(args)} failed:\n{output}")
    return result


def new_database(pg: PgConn) -> PgConn:
    """A fresh database for one dbt build (dbt creates its schemas)."""
    return databases.new_database(pg, "dbt_", schemas=False)


drop_database = databases.drop_database


@pytest.fixture(scope="module")
def world() -> World:
    """A generated world: realistic orders with anomaly labels and the merchant's records."""
    return small_world()


@pytest.fixture(scope="module")
def sample_orders_all(world: World) -> list[Order]:
    """20 orders per channel whose rendering exists (every lifecycle twice) plus the world's."""
    channels = set(available_channels())
    return orders_for(sorted(channels), 20) + [o for o in world.orders if o.channel in channels]


@pytest.fixture(scope="module")
def built_dbt_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the `built_warehouse` build keeps its artifacts (target/manifest.json)."""
    return tmp_path_factory.mktemp("dbt")


@pytest.fixture(scope="module")
def built_warehouse(
    pg: PgConn,
    sample_orders_all: list[Order],
    world: World,
    built_dbt_path: Path,
) -> Iterator[PgConn]:
    """A database holding the orders and the world's merchant records in `raw`, after one
    `dbt build`."""
    conn = new_database(pg)
    with psycopg.connect(conn.url()) as db:
        load_sample_orders(db, sample_orders_all)
        load_merchant_systems_records(db, world)
    run_dbt(conn, built_dbt_path, "build")
    yield conn
    drop_database(pg, conn)
