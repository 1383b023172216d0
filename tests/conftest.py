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
