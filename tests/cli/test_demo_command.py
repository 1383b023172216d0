"""`orderpulse demo --scenario FILE` on the embedded default, then `orderpulse sandbox truth`:
exactly the scenario's orders are published, land once in marts.fct_orders, and the summary
counts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "twenty_orders.jsonl"

pytestmark = pytest.mark.slow


def _orderpulse(home: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(ORDERPULSE_HOME=str(home), COLUMNS="120")
    return subprocess.run(
        [str(BIN / "orderpulse"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_demo_publishes_exactly_a_scenario_and_lands_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = _orderpulse(home, "demo", "--scenario", str(SCENARIO))
    try:
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "20 orders in marts.fct_orders" in demo.stdout.replace(",", "")

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
