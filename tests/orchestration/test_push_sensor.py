"""A signed push message becomes an order in raw through the Dagster push sensor, and a
replayed message changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id

from orchestration.ingest.sensors import push_jobs_and_sensors
from orchestration.resources import ChannelsResource, WarehouseResource
from orderpulse.services import _serve_in_thread


@pytest.mark.parametrize("channel", ["douyin", "youzan"])
def test_pushed_order_lands_in_raw_via_the_sensor(fresh_db, tmp_path: Path, channel) -> None:
    from connectors.credentials import load_credentials
    from connectors.webhook_app import create_webhook_app
    from sandbox.push import Pusher
    from sandbox.server import Sandbox

    home = tmp_path / "home"
    home.mkdir()
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with Sandbox(home, seed=3, orders=120, days=1, end=end, erp_admin_url=None) as sandbox:
        app = create_webhook_app(
            fresh_db.url(), {channel: lambda: load_credentials(channel, home / "sandbox.json")}
        )
        server, port = _serve_in_thread(app)
        try:
            order = next(o for o in sandbox.world.orders if o.channel == channel)
            pusher = Pusher(f"http://127.0.0.1:{port}/webhooks", sandbox.endpoints["channels"])
            pusher.push(channel, [order])
            pusher.push(channel, [order])  # a replay: refused or stored once

            _, sensors = push_jobs_and_sensors()
            sensor = next(s for s in sensors if s.name == f"{channel}_push_sensor")
            resources = {
                "warehouse": WarehouseResource(pg_url=fresh_db.url()),
                "channels": ChannelsResource(home=str(home)),
            }
            # a push run in flight: the messages wait for the run after it
            with dg.instance_for_test() as busy:
                busy.add_run(DagsterRun(
                    job_name=f"{channel}_push_ingest", run_id=make_new_run_id(),
                    status=DagsterRunStatus.STARTED,
                ))  # fmt: skip
                waiting = sensor(dg.build_sensor_context(instance=busy, resources=resources))
                assert isinstance(waiting, dg.SkipReason) and "in flight" in waiting.skip_message
            with dg.instance_for_test() as instance:
                context = dg.build_sensor_context(instance=instance, resources=resources)
                result = sensor(context)
                assert isinstance(result, dg.SensorResult), result
                assert result.asset_events[0].asset_key == dg.AssetKey(["raw", f"{channel}_orders"])
                # nothing new: answered without asking Dagster's run storage (no instance
                # here; these sensors tick every second)
                again = sensor(dg.build_sensor_context(resources=resources, cursor=context.cursor))
                assert isinstance(again, dg.SkipReason)
                assert again.skip_message == "no new push messages"
            pusher.close()
        finally:
            server.should_exit = True

    with psycopg.connect(fresh_db.url()) as conn:
        rows = conn.execute(f"select platform_order_no from raw.{channel}_orders").fetchall()
        pending = conn.execute(
            "select count(*) from raw.webhook_events where processed_at is null"
        ).fetchone()[0]
        stored = conn.execute("select count(*) from raw.webhook_events").fetchone()[0]
    assert rows == [(order.platform_order_no,)]
    assert pending == 0 and stored == 1
