"""`orderpulse up` serves the Dagster UI with the whole asset graph, dbt models included, and
Ctrl-C (SIGINT) stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
QUERY = json.dumps({"query": "{ assetNodes { assetKey { path } groupName } }"}).encode()

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _asset_nodes(port: int) -> list[dict] | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=QUERY,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["data"]["assetNodes"]
    except (OSError, KeyError, ValueError):
        return None


def test_up_serves_the_asset_graph_with_dbt_models(tmp_path: Path) -> None:
    home, port = tmp_path / "home", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env["ORDERPULSE_HOME"] = str(home)
    proc = subprocess.Popen(
        [str(BIN / "orderpulse"), "up", "--port", str(port), "--no-live"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        nodes = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            nodes = _asset_nodes(port)
            if nodes:
                break
            time.sleep(2)
        assert nodes, "the Dagster UI did not answer"
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        groups = {n["groupName"] for n in nodes}
        assert {"marts/fct_orders", "marts/order_holographic", "raw/taobao_orders"} <= keys
        assert {"ingest", "staging", "intermediate", "marts"} <= groups

        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        time.sleep(1)
        assert _asset_nodes(port) is None, "the webserver outlived `orderpulse up`"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([str(BIN / "orderpulse"), "db", "stop"], env=env, capture_output=True)
