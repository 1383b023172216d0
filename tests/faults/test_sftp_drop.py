"""The SFTP connection dropped mid-download (a TCP relay between the connector and the sandbox's
real SFTP server cuts it after a number of bytes): a single drop is reconnected within the run;
a link that keeps dropping fails the run with an error naming the file, having loaded only whole
files; the next run completes. It ends with raw equal to the truth."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncssh
import psycopg
import pytest

from connectors.sftp import (
    RECONNECTS,
    SftpCredentials,
    SftpError,
    credentials_from_info,
    pending_files,
    sync_source,
)
from sandbox.sftp_server import SftpHandle, known_hosts_line, start_sftp
from sandbox.truth import truth_document
from sandbox.world import World, generate_world
from tests.faults.ground_truth import assert_raw_equals_truth, truth_of
from tests.faults.tcp_cut import CuttingRelay

SOURCE = "regional_a"
END = datetime(2026, 11, 23, 12, tzinfo=UTC)  # pinned: the world and its files never move
# regional_a's status words (its export documentation), read independently of the connector
STATUS = {
    "等待买家付款": "awaiting_payment",
    "等待卖家发货": "paid_pending_review",
    "卖家已发货": "in_transit",
    "交易成功": "delivered",
    "售后中": "after_sale",
    "交易关闭": "closed",
}


def _read(payload: dict[str, Any]) -> tuple[str, Decimal]:
    return STATUS[payload["订单状态"]], Decimal(payload["paid_amount"])


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=3, orders=600, days=2, end=END)


@pytest.fixture()
def server(world: World, tmp_path: Path) -> Iterator[SftpHandle]:
    handle = start_sftp(world, tmp_path / "sftp", channels=(SOURCE,))
    yield handle
    handle.stop()


def _through(server: SftpHandle, relay: CuttingRelay, tmp_path: Path) -> SftpCredentials:
    """Credentials that reach `server` through `relay` (its host key known at the relay's port)."""
    host_key = asyncssh.read_private_key(str(server.host_key_path))
    known = tmp_path / "known_hosts_relay"
    known.write_text(known_hosts_line(server.host, relay.port, host_key))
    info = {**server.info(), "port": relay.port, "known_hosts_path": str(known)}
    return credentials_from_info(info, SOURCE)


def _files(server: SftpHandle) -> list[Path]:
    return sorted((server.files_root / SOURCE).glob("order_*.csv"))


def _cut_in_second_file(server: SftpHandle, conn: psycopg.Connection, tmp_path: Path) -> int:
    """Bytes after which a connection is half-way through the second file: what a connection
    that only lists costs (handshake, login, listing), measured, plus the files' sizes."""
    probe = CuttingRelay(server.port)
    try:
        pending_files(conn, SOURCE, creds=_through(server, probe, tmp_path))
    finally:
        probe.close()
    first, second = (p.stat().st_size for p in _files(server)[:2])
    return probe.bytes_down[0] + first + second // 2


def _truth(world: World) -> dict[str, dict]:
    return truth_of(truth_document(world.orders)["orders"], SOURCE)


@pytest.mark.slow  # about 6 s: three CSV files parsed and loaded, over four connections
def test_dropped_downloads_reconnect_or_fail_cleanly_and_nothing_is_lost(
    server: SftpHandle, world: World, fresh_db, tmp_path: Path
) -> None:
    files = _files(server)
    assert len(files) >= 3
    # read before any sync: a loaded file may be moved on the server (the source's move_to)
    first_hash = hashlib.sha256(files[0].read_bytes()).hexdigest()
    with psycopg.connect(fresh_db.url()) as conn:
        cut = _cut_in_second_file(server, conn, tmp_path)
        again = cut - files[0].stat().st_size  # a reconnect starts at the second file

        # a link that keeps dropping: the run fails, naming the file, after bounded reconnects
        relay = CuttingRelay(server.port, cuts=[cut] + [again] * RECONNECTS)
        try:
            with pytest.raises(SftpError) as caught:
                sync_source(conn, SOURCE, creds=_through(server, relay, tmp_path))
        finally:
            relay.close()
        assert relay.connections == relay.cut == 1 + RECONNECTS
        message = str(caught.value)
        assert f"connection dropped while downloading /{SOURCE}/{files[1].name}" in message
        assert "the next run resumes" in message
        # only whole files were loaded: the first, byte for byte; no row of the cut one
        first = (f"/{SOURCE}/{files[0].name}", first_hash)
        assert conn.execute("select path, content_hash from raw.loaded_files").fetchall() == [first]
        sources = conn.execute(f"select distinct payload ->> '_file' from raw.{SOURCE}_orders")
        assert sources.fetchall() == [(files[0].name,)]

        # the next run drops once mid-file too: it reconnects and loads every remaining file
        relay = CuttingRelay(server.port, cuts=[again])
        try:
            report = sync_source(conn, SOURCE, creds=_through(server, relay, tmp_path))
        finally:
            relay.close()
        assert (relay.cut, relay.connections) == (1, 2), "the drop did not happen as planned"
        assert report.failed == [] and report.skipped == 1
        assert [f.status for f in report.files] == ["loaded"] * (len(files) - 1)
        assert assert_raw_equals_truth(conn, SOURCE, _truth(world), _read) > 20
