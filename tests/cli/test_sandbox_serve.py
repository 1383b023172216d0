"""`orderpulse sandbox serve` (a real subprocess, the warehouse a scratch database): a static
world ends ten minutes before it starts, so every platform serves every order (PDD only
windows ending 3 minutes before its clock), and sandbox.json records `--full-world` and the
oldest order (what `orderpulse demo --sandbox-running` pulls back to).
SIGINT stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kernel.database import PgConn
from sandbox.world import generate_world

BIN = Path(sys.executable).parent


def test_a_static_sandbox_ends_before_it_starts_and_stops_on_sigint(
    fresh_db: PgConn, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(ORDERPULSE_HOME=str(home), ORDERPULSE_PG_URL=fresh_db.url())
    started = datetime.now(UTC)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "orderpulse"), "sandbox", "serve", "--orders", "300", "--days", "1",
             "--full-world"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while "orders published" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        generated = json.loads((home / "sandbox.json").read_text())["generated"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    end = datetime.fromisoformat(generated["end"])
    # ten minutes before its start (floored to the minute; a slow start on a busy host allowed)
    assert started - timedelta(minutes=11) <= end <= started - timedelta(minutes=5)
    assert generated["marketplaces_only"] is False and generated["live"] is False
    # a first pull reaches back to the oldest order (the world regenerated from its seed)
    world = generate_world(generated["seed"], 300, 1, end)
    oldest = min(o.created_at for o in world.orders)
    assert datetime.fromisoformat(generated["oldest_order"]) == oldest
    assert code in (0, -signal.SIGINT, 130), log.read_text()[-2000:]
