"""Shared fixtures: one real PostgreSQL (embedded, in a temp dir) for the whole session.

Set ORDERPULSE_TEST_PG_URL to run the suite against another server instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from kernel.database import PgConn, ensure_database, stop_embedded
from kernel.settings import Settings
from tests.databases import drop_database, new_database

# the warm dbt server a test's dbt starts (kernel/warm_dbt.py) leaves a minute after the suite
os.environ.setdefault("ORDERPULSE_DBT_WARM_IDLE", "60")

# The files that take long, in the order to hand them out (seconds: CI runs of 2026-12-04).
# `make test` runs `-n 2 --dist loadfile`: xdist hands out whole files in collection order
# (pyproject.toml turns off its default reordering by test count, which handed these out
# last, so one worker ran live mode alone at the end). At the start each worker gets two
# files, the 1st and 3rd to one and the 2nd and 4th to the other: a short file goes 3rd, so
# the worker busy with live mode holds nothing long behind it while the other takes the rest;
# views_in_place goes 4th, beside dbt_build: both copy the worker's one built warehouse
# (`built_template` in tests/dbt/conftest.py), built only once when they share a worker.
LONG_FILES = (
    "cli/test_live_mode.py",  # 217–538
    "dbt/test_dbt_build.py",  # ~300
    "dbt/test_views_in_place.py",  # ~45
    "cli/test_demo_command.py",  # 90–196
    "orchestration/test_skeleton_e2e.py",  # ~150
    "cli/test_backfill_command.py",  # ~70
    "faults/test_dbt_faults.py",  # ~65
    "quality/test_detectors_on_dbt_marts.py",  # ~35
    "dbt/test_spreadsheet_safety.py",  # ~30
    "quality/test_health_index_mart.py",  # ~30
    "orchestration/test_ui_metadata.py",  # ~20
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """LONG_FILES first, with one short file third (see there); the rest keep their
    order. Only the order of whole files changes, never the order within one."""
    tests_dir = Path(__file__).parent

    def file_of(item: pytest.Item) -> str:
        if item.path.is_relative_to(tests_dir):
            return item.path.relative_to(tests_dir).as_posix()
        return str(item.path)

    files = list(dict.fromkeys(file_of(item) for item in items))
    long = [f for f in LONG_FILES if f in files]
    short = [f for f in files if f not in LONG_FILES]
    order = long[:2] + short[:1] + long[2:] + short[1:]
    rank = {name: k for k, name in enumerate(order)}
    items.sort(key=lambda item: rank[file_of(item)])


@pytest.fixture(scope="session")
def op_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ORDERPULSE_HOME for the session (short path: sockets and logs live below it)."""
    return tmp_path_factory.mktemp("ophome")


@pytest.fixture(scope="session")
def pg(op_home: Path) -> Iterator[PgConn]:
    """The warehouse of the test session: schemas raw/staging/intermediate/marts/ops exist."""
    external = os.environ.get("ORDERPULSE_TEST_PG_URL")
    settings = Settings(home=op_home, pg_url=external)
    conn = ensure_database(settings)
    yield conn
    if not external:
        stop_embedded(settings)


@pytest.fixture()
def db(pg: PgConn) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection to the session warehouse."""
    with psycopg.connect(pg.url()) as conn:
        yield conn


@pytest.fixture()
def fresh_db(pg: PgConn) -> Iterator[PgConn]:
    """A brand-new empty database on the session server (for tests that need isolation)."""
    conn = new_database(pg)
    yield conn
    drop_database(pg, conn)


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """A current dbt manifest (dagster-dbt's preparer: `dbt parse`), as every entry point
    prepares it before loading the Dagster definitions."""
    from orchestration.dbt.project import prepare_manifest

    return prepare_manifest()
