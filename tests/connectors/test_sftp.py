"""The SFTP connector against the sandbox's real SFTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import asyncssh
import psycopg
import pytest

from connectors.channels_config import load_channels
from connectors.credentials import CredentialsError
from connectors.sftp import (
    HostKeyRejected,
    SftpError,
    credentials_from_info,
    pending_files,
    resolve_credentials,
    sync_source,
)
from sandbox.exports import render_day
from sandbox.model import Order
from sandbox.sftp_server import SftpHandle, known_hosts_line, start_sftp
from sandbox.world import generate_world

DAY = date(2026, 11, 20)
NAME = "order_20261120.csv"


def _order(no: str, *, price: str = "1299", note: str | None = None, **over) -> Order:
    data = {
        "channel": "regional_a",
        "platform_order_no": no,
        "shop_id": "S1",
        "created_at": "2026-11-20T10:00:00+08:00",
        "buyer_id": "B1",
        "receiver": {
            "name": "赵六",
            "phone": "13600004444",
            "province": "江苏省",
            "city": "南京市",
            "district": "玄武区",
            "address": "中山路8号, 3楼",
        },
        "items": [
            {"sku": "SKU1", "qty": 1, "price": price},
            {"sku": "SKU2", "qty": 3, "price": "5.5"},
        ],
        "freight": "6",
        "events": [{"at": "2026-11-20T10:02:00+08:00", "type": "pay"}],
        "buyer_note": note,
    }
    data.update(over)
    return Order.model_validate(data)


ORDERS = [_order("A1", note="周末送,谢谢\n放门口"), _order("A2"), _order("A3", price="88.8")]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[SftpHandle]:
    handle = start_sftp(None, tmp_path / "sftp", password="pw-for-tests")
    yield handle
    handle.stop()


def _raw(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "select platform_order_no, payload, content_hash, loaded_at from raw.regional_a_orders"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_utf8_bom_and_gbk_files_load_with_identical_results(server, fresh_db) -> None:
    creds = credentials_from_info(server.info(), "regional_a")
    with psycopg.connect(fresh_db.url()) as conn:
        results = []
        for n, codec in enumerate(("utf-8", "utf-8-sig", "gbk")):
            data = render_day(ORDERS, "regional_a", DAY, encoding=codec)
            server.publish("regional_a", NAME, data, mtime=1_795_000_000 + n)
            report = sync_source(conn, "regional_a", creds=creds)
            [loaded] = report.files
            assert (loaded.status, loaded.encoding, loaded.rows_rejected) == ("loaded", codec, 0)
            results.append((loaded.orders.as_dict(), _raw(conn)))
        first_stats, first_rows = results[0]
        assert first_stats["inserted"] == 3
        for stats, rows in results[1:]:
            assert (stats["updated"], stats["unchanged"]) == (0, 3)  # same content, new bytes
            assert rows == first_rows
        a1 = first_rows["A1"][0]
        assert a1["buyer_note"] == "周末送,谢谢\n放门口"
        assert a1["goods_value"] == "1315.50" and a1["paid_amount"] == "1321.50"
        encodings = conn.execute("select encoding from raw.loaded_files").fetchall()
        assert encodings == [("gbk",)]


def test_unknown_or_changed_host_key_is_refused(server, fresh_db, tmp_path) -> None:
    info = server.info()
    server.publish("regional_a", NAME, render_day(ORDERS, "regional_a", DAY))
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    other = tmp_path / "other_known_hosts"
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    other.write_text(known_hosts_line(server.host, server.port, impostor))
    with psycopg.connect(fresh_db.url()) as conn:
        for known_hosts, message in ((empty, "not found in"), (other, "differs from")):
            creds = credentials_from_info({**info, "known_hosts_path": str(known_hosts)}, "x")
            with pytest.raises(HostKeyRejected, match=message):
                sync_source(conn, "regional_a", creds=creds)
        missing = credentials_from_info({**info, "known_hosts_path": "/nonexistent"}, "x")
        with pytest.raises(HostKeyRejected, match="does not exist"):
            sync_source(conn, "regional_a", creds=missing)
        assert conn.execute("select count(*) from raw.regional_a_orders").fetchone()[0] == 0


def test_a_resent_file_loads_nothing_new(server, fresh_db) -> None:
    creds = credentials_from_info(server.info(), "regional_a")
    data = render_day(ORDERS, "regional_a", DAY)
    server.publish("regional_a", NAME, data, mtime=1_795_000_000)
    with psycopg.connect(fresh_db.url()) as conn:
        assert [f.status for f in sync_source(conn, "regional_a", creds=creds).files] == ["loaded"]
        before = _raw(conn)
        assert pending_files(conn, "regional_a", creds=creds) == []
        again = sync_source(conn, "regional_a", creds=creds)
        assert (again.files, again.skipped) == ([], 1)  # same size and mtime: not downloaded

        server.publish("regional_a", NAME, data, mtime=1_795_000_100)  # re-sent as is
        [pending] = pending_files(conn, "regional_a", creds=creds)
        assert pending.name == NAME
        resent = sync_source(conn, "regional_a", creds=creds)
        assert [f.status for f in resent.files] == ["unchanged"]
        assert _raw(conn) == before
        assert pending_files(conn, "regional_a", creds=creds) == []


def test_a_corrected_file_replaces_its_rows(server, fresh_db) -> None:
    creds = credentials_from_info(server.info(), "regional_a")
    shipped_next_day = _order("A9", events=[
        {"at": "2026-11-20T10:02:00+08:00", "type": "pay"},
        {"at": "2026-11-21T09:00:00+08:00", "type": "ship"},
    ])  # fmt: skip
    world = [*ORDERS, shipped_next_day]
    server.publish("regional_a", NAME, render_day(world, "regional_a", DAY), mtime=1_795_000_000)
    day2 = render_day(world, "regional_a", date(2026, 11, 21))
    server.publish("regional_a", "order_20261121.csv", day2)
    with psycopg.connect(fresh_db.url()) as conn:
        first = sync_source(conn, "regional_a", creds=creds)
        assert [(f.orders.inserted, f.orders.updated) for f in first.files] == [(4, 0), (0, 1)]
        before = _raw(conn)

        # the platform fixes A1's price, drops A2 (and A9, which the next day's file now owns)
        corrected = [_order("A1", price="1199", note="周末送,谢谢\n放门口"), ORDERS[2]]
        server.publish(
            "regional_a", NAME, render_day(corrected, "regional_a", DAY), mtime=1_795_000_500
        )
        [report] = sync_source(conn, "regional_a", creds=creds).files
        assert report.status == "loaded"
        assert (report.orders.updated, report.orders.unchanged, report.withdrawn) == (1, 1, 1)
        after = _raw(conn)
        assert set(after) == {"A1", "A3", "A9"}
        assert after["A1"][0]["items"][0]["price"] == "1199.00"
        assert after["A3"] == before["A3"]
        assert after["A9"] == before["A9"]  # its row came from the later file: untouched
        assert after["A9"][0]["_file"] == "order_20261121.csv"

        # a version whose A3 rows are broken rejects them but does not withdraw A3
        broken = render_day(corrected, "regional_a", DAY).replace(b"88.80", b"8x.80")
        server.publish("regional_a", NAME, broken, mtime=1_795_000_900)
        [report] = sync_source(conn, "regional_a", creds=creds).files
        assert (report.rows_rejected, report.withdrawn) == (2, 0)
        assert _raw(conn)["A3"] == before["A3"]


def test_a_broken_file_fails_alone_and_loaded_files_move(server, fresh_db) -> None:
    # a copy: load_channels() is cached, and a move_to set on it would move other tests' files
    channels = load_channels().model_copy(deep=True)
    cfg = channels.channels["regional_a"]
    cfg.sftp = cfg.sftp.model_copy(update={"move_to": "done"})
    creds = credentials_from_info(server.info(), "regional_a")
    server.publish("regional_a", "order_20261119.csv", b"\xff\xfe\x00garbage\x81" * 20)
    server.publish("regional_a", NAME, render_day(ORDERS, "regional_a", DAY))
    server.publish("regional_a", "notes.txt", b"not an export")
    with psycopg.connect(fresh_db.url()) as conn:
        report = sync_source(conn, "regional_a", creds=creds, channels=channels)
        assert [(f.file, f.status) for f in report.files] == [
            ("/regional_a/order_20261119.csv", "failed"),
            ("/regional_a/order_20261120.csv", "loaded"),
        ]
        assert "not text in UTF-8" in report.failed[0].error
        assert report.as_metadata()["files_failed"] == 1
        assert conn.execute("select count(*) from raw.regional_a_orders").fetchone()[0] == 3
    files = server.files_root / "regional_a"
    assert sorted(p.name for p in files.iterdir()) == ["done", "notes.txt", "order_20261119.csv"]
    assert (files / "done" / NAME).exists()


def test_password_credentials_from_env_and_missing_credentials(server, fresh_db, tmp_path):
    info = server.info()
    environ = {
        "ORDERPULSE_REGIONAL_A_SFTP_HOST": info["host"],
        "ORDERPULSE_REGIONAL_A_SFTP_PORT": str(info["port"]),
        "ORDERPULSE_REGIONAL_A_SFTP_USERNAME": info["username"],
        "ORDERPULSE_REGIONAL_A_SFTP_PASSWORD": "pw-for-tests",
        "ORDERPULSE_REGIONAL_A_SFTP_KNOWN_HOSTS": info["known_hosts_path"],
    }
    creds = resolve_credentials("regional_a", environ=environ)
    assert "pw-for-tests" not in repr(creds)
    server.publish("regional_a", NAME, render_day(ORDERS, "regional_a", DAY))
    with psycopg.connect(fresh_db.url()) as conn:
        assert sync_source(conn, "regional_a", creds=creds).files[0].orders.inserted == 3
        wrong = resolve_credentials(
            "regional_a", environ={**environ, "ORDERPULSE_REGIONAL_A_SFTP_PASSWORD": "nope"}
        )
        with pytest.raises(SftpError, match="login as orderpulse refused") as err:
            sync_source(conn, "regional_a", creds=wrong)
        assert "nope" not in str(err.value)
    with pytest.raises(CredentialsError, match="ORDERPULSE_REGIONAL_B_SFTP_HOST"):
        resolve_credentials("regional_b", tmp_path / "missing.json", environ={})
    sandbox_json = tmp_path / "sandbox.json"
    sandbox_json.write_text(json.dumps({"sftp": info}))
    from_sandbox = resolve_credentials("regional_b", sandbox_json, environ={})
    assert (from_sandbox.port, from_sandbox.directory) == (info["port"], "/regional_b")
    # a server named by env never mixes with the sandbox's values (port, directory)
    real = {
        "ORDERPULSE_REGIONAL_B_SFTP_HOST": "sftp.example",
        "ORDERPULSE_REGIONAL_B_SFTP_USERNAME": "u",
    }
    with pytest.raises(CredentialsError, match="ORDERPULSE_REGIONAL_B_SFTP_PASSWORD"):
        resolve_credentials("regional_b", sandbox_json, environ=real)
    real["ORDERPULSE_REGIONAL_B_SFTP_PASSWORD"] = "pw"
    creds = resolve_credentials("regional_b", sandbox_json, environ=real)
    assert (creds.host, creds.port, creds.directory) == ("sftp.example", 22, None)


def test_the_sandbox_world_loads_to_its_truth(tmp_path, fresh_db) -> None:
    world = generate_world(seed=3, orders=1500, days=3)
    handle = start_sftp(world, tmp_path / "sftp")
    try:
        with psycopg.connect(fresh_db.url()) as conn:
            for source in ("regional_a", "regional_b"):
                report = sync_source(
                    conn, source, creds=credentials_from_info(handle.info(), source)
                )
                assert report.failed == [] and report.files
                assert sum(f.rows_rejected for f in report.files) == 0
            got = conn.execute(
                "select channel, platform_order_no, payload ->> 'goods_value', "
                "payload ->> 'paid_amount' from raw.regional_a_orders union all "
                "select channel, platform_order_no, payload ->> 'goods_value', "
                "payload ->> 'paid_amount' from raw.regional_b_orders"
            ).fetchall()
    finally:
        handle.stop()
    want = {
        (o.channel, o.platform_order_no, str(o.goods_value), str(o.paid_amount))
        for o in world.orders
        if o.channel in ("regional_a", "regional_b")
    }
    assert len(want) > 50 and set(got) == want
