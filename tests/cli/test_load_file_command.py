"""`orderpulse load-file`: every problem of every rejected row is printed, the good rows load,
and the exit code says rows were rejected (3); a clean file exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from kernel.database import PgConn

BIN = Path(sys.executable).parent
TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "templates" / "pos_orders.csv"


def _load(home: Path, warehouse: PgConn, path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(ORDERPULSE_HOME=str(home), ORDERPULSE_PG_URL=warehouse.url(), COLUMNS="100")
    return subprocess.run(
        [str(BIN / "orderpulse"), "load-file", str(path), "--source", "pos"], env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _receipts(rows: list[dict[int, str]]) -> str:
    """The POS template's header and sample row, one copy per entry with its cells replaced."""
    header, sample = TEMPLATE.read_text("utf-8-sig").splitlines()[:2]
    lines = [header]
    for changes in rows:
        cells = sample.split(",")
        for index, value in changes.items():
            cells[index] = value
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def test_load_file_reports_every_problem_and_exits_3(fresh_db: PgConn, tmp_path: Path) -> None:
    # columns: 0 receipt no, 2 order time, 13 quantity, 14 unit price
    bad_twice = {0: "POS-T-2", 2: "2026-13-45 99:00:00", 13: "-2"}
    bad_price = {0: "POS-T-3", 14: "abc"}
    path = tmp_path / "receipts.csv"
    path.write_text(_receipts([{0: "POS-T-1"}, bad_twice, bad_price]), "utf-8")

    result = _load(tmp_path / "home", fresh_db, path)
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout
    assert "rows rejected: 2" in out
    line3 = next(line for line in out.splitlines() if "line 3:" in line)
    assert "下单时间" in line3 and "数量" in line3  # both problems of the row
    assert "line 4:" in out and "单价" in out
    assert "exit code 3" in result.stderr
    assert "Traceback" not in out + result.stderr
    with psycopg.connect(fresh_db.url()) as db:
        loaded = db.execute("select platform_order_no from raw.pos_orders").fetchall()
    assert [r[0] for r in loaded] == ["POS-T-1"]

    clean = tmp_path / "clean.csv"
    clean.write_text(_receipts([{0: "POS-T-9"}]), "utf-8")
    again = _load(tmp_path / "home", fresh_db, clean)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "rows rejected: 0" in again.stdout
