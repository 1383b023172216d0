"""The merchant systems connector against the sandbox's merchant systems API over HTTP, into a
real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import psycopg
import pytest

from connectors.credentials import CredentialsError
from connectors.http import IngestError, make_http_client
from connectors.merchant_systems import (
    LOOKBACK,
    SOURCES,
    ensure_merchant_systems_tables,
    ingest_merchant_systems,
    ingest_source,
    merchant_systems_endpoint,
)
from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread, set_world
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "merchant-secret-token-93ab"
# raw table -> World attribute holding the same records
WORLD_ATTR = {
    "warehouses": "warehouses", "skus": "skus", "wms_stock": "stock",
    "wms_events": "wms_events", "stock_movements": "stock_movements",
    "carrier_shipments": "shipments", "carrier_tracks": "tracking_events",
    "cs_tickets": "cs_tickets", "behaviour_events": "behaviour_log",
}  # fmt: skip


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=21, orders=300, end=END)


@pytest.fixture()
def api(world):
    app = build_merchant_systems_app(world, TOKEN)
    server = serve_in_thread(app)
    yield app, server.base_url
    server.stop()


@pytest.fixture()
def conn(fresh_db):
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        yield c


def _count(conn, table: str) -> int:
    return conn.execute(f"select count(*) from raw.{table}").fetchone()[0]


def test_full_load_then_rerun_is_a_no_op(conn, api, world) -> None:
    _, base_url = api
    received = ingest_merchant_systems(conn, base_url, TOKEN, run_id="run-1")
    for table, attr in WORLD_ATTR.items():
        expected = len(getattr(world, attr))
        assert received[table] == expected, table
        assert _count(conn, table) == expected, table
    # payloads carry the documented keys; natural keys and times are columns
    payload, modified = conn.execute(
        "select payload, source_modified_at from raw.wms_events order by event_id limit 1"
    ).fetchone()
    assert {"event_id", "at", "warehouse_id", "channel", "platform_order_no", "type"} <= set(
        payload
    )
    assert modified == datetime.fromisoformat(payload["at"])
    cursor = conn.execute(
        "select cursor_value from raw.ingest_cursors where source = 'merchant_systems.cs_tickets'"
    ).fetchone()[0]
    assert cursor == max(t.updated_at for t in world.cs_tickets)
    stock = conn.execute(
        "select payload from raw.wms_stock where warehouse_id = 'WH-WEST' limit 1"
    ).fetchone()[0]
    assert "last_sync_at" in stock and "available" in stock
    # a second run changes nothing
    before = conn.execute("select max(loaded_at) from raw.behaviour_events").fetchone()[0]
    with make_http_client() as http:
        for source in SOURCES:
            stats = ingest_source(conn, http, base_url, _secret(), source, run_id="run-2")
            assert (stats.inserted, stats.updated) == (0, 0), source.table
    assert conn.execute("select max(loaded_at) from raw.behaviour_events").fetchone()[0] == before
    assert conn.execute("select count(*) from raw.rejected_rows").fetchone()[0] == 0


def _secret():
    from pydantic import SecretStr

    return SecretStr(TOKEN)


def test_incremental_reads_only_from_the_cursor(conn, api, world) -> None:
    app, base_url = api
    cut = world.behaviour_log[len(world.behaviour_log) // 2].at
    early = dataclasses.replace(
        world,
        behaviour_log=[b for b in world.behaviour_log if b.at <= cut],
        wms_events=[e for e in world.wms_events if e.at <= cut],
    )
    set_world(app, early)
    first = ingest_merchant_systems(conn, base_url, TOKEN)
    assert first["behaviour_events"] == len(early.behaviour_log) < len(world.behaviour_log)
    set_world(app, world)
    second = ingest_merchant_systems(conn, base_url, TOKEN)
    reread_from = cut - LOOKBACK
    assert second["behaviour_events"] == sum(1 for b in world.behaviour_log if b.at >= reread_from)
    assert second["behaviour_events"] < len(world.behaviour_log)
    assert _count(conn, "behaviour_events") == len(world.behaviour_log)
    assert _count(conn, "wms_events") == len(world.wms_events)


def test_changed_record_is_updated_and_bad_record_rejected(conn, api, world) -> None:
    app, base_url = api
    ingest_merchant_systems(conn, base_url, TOKEN)
    ticket = world.cs_tickets[0]
    # an old ticket is resolved now (its updated_at moves), and a broken record shows up
    resolved = dataclasses.replace(ticket, status="resolved", updated_at=world.end)
    broken = dataclasses.replace(world.cs_tickets[1], ticket_id="", updated_at=world.end)
    set_world(app, dataclasses.replace(world, cs_tickets=[resolved, broken, *world.cs_tickets[2:]]))
    with make_http_client() as http:
        tickets = next(s for s in SOURCES if s.table == "cs_tickets")
        stats = ingest_source(conn, http, base_url, _secret(), tickets, run_id="run-3")
    assert (stats.updated, stats.rejected) == (1, 1)
    payload = conn.execute(
        "select payload from raw.cs_tickets where ticket_id = %s", [ticket.ticket_id]
    ).fetchone()[0]
    assert payload["status"] == "resolved"
    reason, source = conn.execute("select reason, source from raw.rejected_rows").fetchone()
    assert source == "merchant_systems.cs_tickets" and "ticket_id" in reason


def test_wrong_token_fails_clearly_without_leaking(conn, api) -> None:
    _, base_url = api
    with pytest.raises(IngestError) as err:
        ingest_merchant_systems(conn, base_url, "not-the-token-xyz")
    assert "401" in str(err.value)
    assert "not-the-token-xyz" not in str(err.value) and TOKEN not in str(err.value)


def test_endpoint_from_env_or_sandbox_json(tmp_path) -> None:
    sandbox = tmp_path / "sandbox.json"
    entry = {"base_url": "http://127.0.0.1:9/", "token": "t0k3n"}
    sandbox.write_text(json.dumps({"merchant_systems": entry}))
    url, token = merchant_systems_endpoint(sandbox, environ={})
    assert url == "http://127.0.0.1:9" and token.get_secret_value() == "t0k3n"
    assert "t0k3n" not in repr(token)
    env = {
        "ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL": "https://h:1",
        "ORDERPULSE_MERCHANT_SYSTEMS_TOKEN": "envtok",
    }
    url, token = merchant_systems_endpoint(sandbox, environ=env)
    assert (url, token.get_secret_value()) == ("https://h:1", "envtok")
    with pytest.raises(CredentialsError, match="ORDERPULSE_MERCHANT_SYSTEMS_TOKEN"):
        merchant_systems_endpoint(tmp_path / "missing.json", environ={})
    # the names from before the rename are pointed at, not silently ignored
    old = {"ORDERPULSE_OPS_BASE_URL": "http://h:1", "ORDERPULSE_OPS_TOKEN": "envtok"}
    with pytest.raises(CredentialsError, match="renamed to ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL"):
        merchant_systems_endpoint(tmp_path / "missing.json", environ=old)


def test_cursors_under_the_old_ops_names_are_migrated(conn) -> None:
    ensure_merchant_systems_tables(conn)
    conn.execute(
        "insert into raw.ingest_cursors (source, cursor_value) values ('ops.cs_tickets', now())"
    )
    conn.execute("insert into raw.rejected_rows (source, reason) values ('ops.skus', 'x')")
    ensure_merchant_systems_tables(conn)
    ensure_merchant_systems_tables(conn)  # idempotent
    cursors = [r[0] for r in conn.execute("select source from raw.ingest_cursors")]
    rejects = [r[0] for r in conn.execute("select source from raw.rejected_rows")]
    assert (cursors, rejects) == (["merchant_systems.cs_tickets"], ["merchant_systems.skus"])


def test_bad_times_are_rejected_with_their_reason(conn, world) -> None:
    """The record checks run in PostgreSQL over the whole batch: a time without an offset and
    one that is not a time are rejected with their reasons, the page's good records load and
    the cursor moves to the newest good one."""
    from fastapi import FastAPI

    from sandbox.merchant_systems_records import record_dict

    records = [record_dict(e) for e in world.wms_events[:50]]
    records[0]["at"] = records[0]["at"][:19]  # 2026-11-22T08:00:00: no offset
    records[1]["at"] = "yesterday"
    app = FastAPI()
    app.get("/wms/events")(lambda: {"items": records, "next_cursor": None, "has_more": False})
    server = serve_in_thread(app)
    source = next(s for s in SOURCES if s.table == "wms_events")
    ensure_merchant_systems_tables(conn)
    try:
        with make_http_client() as http:
            stats = ingest_source(conn, http, server.base_url, _secret(), source, run_id="r")
    finally:
        server.stop()
    assert (stats.received, stats.inserted, stats.rejected) == (50, 48, 2)
    rejects = conn.execute("select reason, raw_text from raw.rejected_rows order by id").fetchall()
    assert [r[0] for r in rejects] == [
        f"at='{records[0]['at']}' has no UTC offset",
        "at='yesterday' is not an ISO 8601 time",
    ]
    assert json.loads(rejects[0][1])["event_id"] == records[0]["event_id"]
    cursor = conn.execute(
        "select cursor_value from raw.ingest_cursors where source = 'merchant_systems.wms_events'"
    ).fetchone()[0]
    assert cursor == max(e.at for e in world.wms_events[2:50])


def test_batches_commit_on_a_connection_that_is_not_autocommit(fresh_db, api, world, monkeypatch):
    """The Dagster asset passes a plain (non-autocommit) connection: each batch still commits
    on its own (visible to another session at once) and merges only its own pages."""
    import connectors.merchant_systems as merchant_systems

    _, base_url = api
    monkeypatch.setattr(merchant_systems, "BATCH_ROWS", 500)  # several batches per source
    source = next(s for s in SOURCES if s.table == "behaviour_events")
    with psycopg.connect(fresh_db.url()) as conn, make_http_client() as http:
        ensure_merchant_systems_tables(conn)
        stats = ingest_source(conn, http, base_url, _secret(), source, run_id="r")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with psycopg.connect(fresh_db.url(), autocommit=True) as other:
            assert _count(other, "behaviour_events") == len(world.behaviour_log)
    assert (stats.inserted, stats.updated) == (len(world.behaviour_log), 0)
    # a pull that wrote many rows leaves fresh planner statistics (reltuples -1: never analysed)
    assert len(world.behaviour_log) >= merchant_systems.ANALYZE_ROWS
    with psycopg.connect(fresh_db.url(), autocommit=True) as other:
        (reltuples,) = other.execute(
            "select reltuples from pg_class where oid = 'raw.behaviour_events'::regclass"
        ).fetchone()
        (common,) = other.execute(
            "select most_common_vals::text::text[] from pg_stats "
            "where schemaname = 'raw' and tablename = 'behaviour_events' and attname = 'run_id'"
        ).fetchone()
    assert reltuples == len(world.behaviour_log)
    assert common == ["r"]  # the checks of this run's rows are planned for what it wrote
