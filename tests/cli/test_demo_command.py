"""`orderpulse demo --scenario FILE` on the embedded default, then `orderpulse sandbox truth`:
exactly the scenario's orders are published, land once in marts.fct_orders, and the summary
counts them. The home holds a previous world's leftovers (a POS file with an order of its own,
an SFTP export, an outbox email): the reset removes them, unasked since stdin is no terminal.
The demo's stdout is a terminal: it shows the progress and the summary, dbt's lines go to the
log file it names."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "twenty_orders.jsonl"
TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "templates" / "pos_orders.csv"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

pytestmark = pytest.mark.slow


def _orderpulse(home: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(ORDERPULSE_HOME=str(home), COLUMNS="120")
    return subprocess.run(
        [str(BIN / "orderpulse"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _demo_in_a_terminal(home: Path, *args: str) -> tuple[int, str]:
    """Run `orderpulse demo` with stdout and stderr on a pseudo-terminal, stdin not one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(ORDERPULSE_HOME=str(home), COLUMNS="120", TERM="xterm")
    controller, terminal = os.openpty()
    proc = subprocess.Popen(
        [str(BIN / "orderpulse"), "demo", *args], env=env, stdin=subprocess.DEVNULL,
        stdout=terminal, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    screen, deadline = bytearray(), time.monotonic() + 600
    # read until the demo has exited and said everything (the embedded PostgreSQL it starts
    # may keep the terminal open after it)
    while time.monotonic() < deadline:
        if select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(controller)
    code = proc.wait(timeout=10)
    return code, ANSI.sub("", screen.decode("utf-8", "replace")).replace("\r", "\n")


def _plant_leftovers(home: Path) -> list[Path]:
    """A previous world's files: a valid POS receipt no scenario has, an SFTP export, a mail."""
    header, sample = TEMPLATE.read_text("utf-8-sig").splitlines()[:2]
    receipt = "POS-LEFTOVER-1" + sample[sample.index(",") :]
    files = {
        home / "drop" / "pos" / "old_receipts.csv": f"{header}\n{receipt}\n",
        home / "sandbox" / "sftp" / "files" / "regional_a" / "order_20200101.csv": "x\n",
        home / "outbox" / "old.eml": "Subject: old\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return list(files)


def test_demo_publishes_exactly_a_scenario_and_lands_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    leftovers = _plant_leftovers(home)
    code, screen = _demo_in_a_terminal(home, "--scenario", str(SCENARIO))
    try:
        assert code == 0, screen[-4000:]
        said = " ".join(screen.split())
        assert "20 orders in marts.fct_orders" in said.replace(",", "")
        assert "reset removes the previous world" in said
        assert f"{home / 'drop'}: 1 files (POS drop folder)" in said
        assert f"{home / 'outbox'}: 1 files (alert emails)" in said
        assert not [p for p in leftovers if p.exists()]
        # the summary's total row: every channel of the truth matches, with the totals
        total = next(line for line in screen.splitlines() if line.strip("│ ").startswith("total"))
        assert re.search(r"│\s*20\s*│.*│\s*20\s*│.*│\s*10 of 10\s*│", total), total
        # decisions beside the sandbox's labels: every oversold order flagged
        assert re.search(r"truth: (\d+) of \1 oversold_sku orders flagged oversold", said), said
        # dbt's own output is in the log file the demo names, not on the terminal
        assert "Running with dbt" not in screen and "START sql" not in screen
        log = Path(re.search(r"dbt and run output: (\S+\.log)", said).group(1))
        text = log.read_text("utf-8")
        assert "Running with dbt" in text and "START sql" in text

        truth = _orderpulse(home, "sandbox", "truth")
        assert truth.returncode == 0, truth.stderr
        orders = json.loads(truth.stdout)["orders"]
        scenario = [json.loads(line) for line in SCENARIO.read_text().splitlines() if line]
        want = {(o["channel"], o["platform_order_no"]) for o in scenario}
        assert len(orders) == 20
        assert {(o["channel"], o["platform_order_no"]) for o in orders} == want

        url = _orderpulse(home, "db", "url").stdout.strip()
        with psycopg.connect(url) as conn:
            rows = conn.execute("select channel, platform_order_no from marts.fct_orders")
            landed = [tuple(r) for r in rows]
        assert sorted(landed) == sorted(want)
    finally:
        _orderpulse(home, "db", "stop")
