"""Fixtures of the fault tests: a PostgreSQL server of the test's own (the session's is shared
and must never be restarted) and a small sandbox on loopback for the gateways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from kernel.database import EmbeddedServer

SEED, ORDERS, DAYS = 5, 600, 2  # about sixty orders per marketplace over two days


@pytest.fixture()
def private_pg(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A running embedded PostgreSQL in this test's temp dir with an empty warehouse database,
    stopped at the end; the test may stop and start it at will."""
    server = EmbeddedServer(tmp_path / "pg" / "pgdata")
    server.start()
    try:
        with psycopg.connect(server.conn("postgres").url(), autocommit=True) as admin:
            admin.execute(f'create database "{server.conn().dbname}"')
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _sandbox(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN202 (a Sandbox)
    from sandbox.server import Sandbox

    with Sandbox(tmp_path_factory.mktemp("faultsb"), seed=SEED, orders=ORDERS, days=DAYS) as sb:
        yield sb


@pytest.fixture()
def fault_sandbox(_sandbox):  # noqa: ANN001, ANN201 (a Sandbox)
    """One small sandbox (six marketplace gateways on loopback) per test worker, its faults
    off before and after each test."""
    from sandbox.faults import FaultConfig
    from sandbox.model import MARKETPLACES

    for channel in MARKETPLACES:
        _sandbox.set_faults(channel, FaultConfig())
    yield _sandbox
    for channel in MARKETPLACES:
        _sandbox.set_faults(channel, FaultConfig())
