"""The POS import template and the drop folder (real PostgreSQL, real CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from connectors.channels_config import load_channels
from connectors.file_drop import (
    drop_folder,
    load_drop_folder,
    load_file,
    pending_files,
    scan_drop_folder,
)
from kernel.settings import Settings
from sandbox.exports import write_exports
from sandbox.world import generate_world

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "config" / "templates" / "pos_orders.csv"


def test_the_shipped_template_loads_its_row(fresh_db) -> None:
    heard: list[int] = []  # what a progress display hears: rows read after each chunk
    with psycopg.connect(fresh_db.url()) as conn:
        report = load_file(conn, TEMPLATE, "pos", on_chunk=heard.append)
        assert (report.status, report.rows_loaded, report.rows_rejected) == ("loaded", 1, 0)
        assert heard == [1]
        assert report.encoding == "utf-8-sig"
        [(no, payload)] = conn.execute("select platform_order_no, payload from raw.pos_orders")
    assert no == "POS-TEMPLATE-0001"
    assert payload["goods_value"] == "59.90" and payload["paid_amount"] == "54.90"
    assert payload["discount_amount"] == "5.00" and payload["status"] == "已完成"
    assert payload["created_at"] == "2026-11-20T10:00:00+08:00"
    assert "rows loaded:   1" in report.render()


def test_orderpulse_load_file_command_prints_the_report(fresh_db, tmp_path) -> None:
    env = {
        **os.environ,
        "ORDERPULSE_PG_URL": fresh_db.url(),
        "ORDERPULSE_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
        "COLUMNS": "300",  # one reason per line
    }
    cli = Path(sys.executable).parent / "orderpulse"
    bad = tmp_path / "pos_bad.csv"
    header, row = TEMPLATE.read_text(encoding="utf-8-sig").splitlines()
    absurd = row.replace("POS-TEMPLATE-0001", "P4").replace("29.95", "1" + "0" * 40)
    bad.write_text("\n".join([header, row.replace("POS-TEMPLATE-0001", "P2"),
                              row.replace("29.95", "abc"), absurd]), encoding="gbk")  # fmt: skip
    done = subprocess.run(
        [str(cli), "load-file", str(bad), "--source", "pos"],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # loaded, with rejected rows (README)
    assert "rows loaded:   1" in done.stdout and "rows rejected: 2" in done.stdout
    assert "line 3: unparsable amount in 单价: 'abc'" in done.stdout
    # an absurd amount is a rejected row with its reason, not a traceback
    assert "line 4: 单价 (price) '1" + "0" * 40 + ".00' is out of range" in done.stdout

    unknown = subprocess.run(
        [str(cli), "load-file", str(bad), "--source", "nosuch"],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert unknown.returncode != 0
    assert "not a file source" in unknown.stdout + unknown.stderr


def test_drop_folder_scan_load_and_move(fresh_db, tmp_path) -> None:
    # a copy: load_channels() is cached, and a move_to set on it would move other tests' files
    channels = load_channels().model_copy(deep=True)
    cfg = channels.channels["pos"]
    cfg.file_drop = cfg.file_drop.model_copy(update={"move_to": "loaded"})
    folder = drop_folder("pos", channels=channels, settings=Settings(home=tmp_path))
    assert folder == tmp_path.resolve() / "drop" / "pos" and folder.is_dir()

    data = TEMPLATE.read_bytes()
    (folder / "store1.csv").write_bytes(data)
    (folder / "store2.CSV").write_bytes(data.replace(b"POS-TEMPLATE-0001", b"POS-S2-0001"))
    (folder / "~$store1.xlsx").write_bytes(b"lock")
    (folder / ".partial.csv").write_bytes(b"x")
    (folder / "readme.txt").write_text("ignored")
    (folder / "broken.xlsx").write_bytes(b"PK\x03\x04 not really")
    assert sorted(f.path.name for f in scan_drop_folder(folder)) == [
        "broken.xlsx", "store1.csv", "store2.CSV",
    ]  # fmt: skip

    with psycopg.connect(fresh_db.url()) as conn:
        assert len(pending_files(conn, "pos", folder=folder, channels=channels)) == 3
        reports = load_drop_folder(conn, "pos", folder=folder, channels=channels, run_id="r1")
        assert sorted((Path(r.file).name, r.status) for r in reports) == [
            ("broken.xlsx", "failed"), ("store1.csv", "loaded"), ("store2.CSV", "loaded"),
        ]  # fmt: skip
        count = conn.execute("select count(*) from raw.pos_orders").fetchone()[0]
        assert count == 2
        # the broken file stays (it was not loaded); loaded files moved away
        left = pending_files(conn, "pos", folder=folder, channels=channels)
        assert [f.path.name for f in left] == ["broken.xlsx"]
    assert sorted(p.name for p in (folder / "loaded").iterdir()) == ["store1.csv", "store2.CSV"]


def test_unknown_source_is_a_clear_error(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn, pytest.raises(ValueError, match="h5mall"):
        load_file(conn, TEMPLATE, "h5mall")


def test_the_sandbox_pos_exports_load_to_their_truth(fresh_db, tmp_path) -> None:
    world = generate_world(seed=5, orders=1500, days=3)
    write_exports(world, tmp_path / "drop", channels=("pos",))
    channels = load_channels()
    folder = drop_folder("pos", channels=channels, settings=Settings(home=tmp_path))
    with psycopg.connect(fresh_db.url()) as conn:
        reports = load_drop_folder(conn, "pos", folder=folder, channels=channels)
        assert reports and all(r.status == "loaded" and r.rows_rejected == 0 for r in reports)
        got = set(conn.execute(
            "select platform_order_no, payload ->> 'goods_value', payload ->> 'paid_amount' "
            "from raw.pos_orders"
        ).fetchall())  # fmt: skip
    want = {
        (o.platform_order_no, str(o.goods_value), str(o.paid_amount))
        for o in world.orders
        if o.channel == "pos"
    }
    assert len(want) > 20 and got == want
