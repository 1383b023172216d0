"""The POS drop-folder sensor and the SFTP sensor ask for a run only when a file is new or
changed, and the assets they start load it (real PostgreSQL, real SFTP server)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import dagster as dg

from orchestration.ingest.file_assets import file_and_db_assets, file_sensors
from orchestration.resources import ChannelsResource, WarehouseResource

TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "templates" / "pos_orders.csv"


def _sensor(name: str) -> dg.SensorDefinition:
    return next(s for s in file_sensors() if s.name == name)


def _asset(key: str) -> dg.AssetsDefinition:
    return next(a for a in file_and_db_assets() if a.key.to_user_string() == key)


def _resources(db, home: Path) -> dict:
    return {
        "warehouse": WarehouseResource(pg_url=db.url()),
        "channels": ChannelsResource(home=str(home)),
    }


def test_pos_drop_folder_sensor_and_asset(fresh_db, tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = home / "drop" / "pos"
    folder.mkdir(parents=True)
    resources = _resources(fresh_db, home)
    sensor = _sensor("pos_drop_folder_sensor")
    with dg.instance_for_test() as instance:
        empty = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(empty, dg.SkipReason)

        shutil.copy(TEMPLATE, folder / "pos_20261120.csv")
        request = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(request, dg.RunRequest) and "pos_20261120.csv" in request.run_key

        result = dg.materialize([_asset("raw/pos_orders")], resources=resources, instance=instance)
        assert result.success
        meta = result.asset_materializations_for_node("raw__pos_orders")[0].metadata
        assert meta["rows_loaded"].value == 1 and meta["rows_rejected"].value == 0

        loaded = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(loaded, dg.SkipReason)


def test_sftp_sensor_sees_new_exports_then_nothing(fresh_db, tmp_path: Path) -> None:
    from sandbox.sftp_server import start_sftp
    from sandbox.world import generate_world

    home = tmp_path / "home"
    home.mkdir()
    world = generate_world(seed=4, orders=300, days=2)
    handle = start_sftp(world, tmp_path / "sftp")
    try:
        (home / "sandbox.json").write_text(json.dumps({"sftp": handle.info()}))
        resources = _resources(fresh_db, home)
        sensor = _sensor("regional_a_sftp_sensor")
        with dg.instance_for_test() as instance:
            request = sensor(dg.build_sensor_context(instance=instance, resources=resources))
            assert isinstance(request, dg.RunRequest)
            assert "order_" in request.run_key
            result = dg.materialize(
                [_asset("raw/regional_a_orders")], resources=resources, instance=instance
            )
            assert result.success
            meta = result.asset_materializations_for_node("raw__regional_a_orders")[0].metadata
            assert meta["rows_loaded"].value > 0
            after = sensor(dg.build_sensor_context(instance=instance, resources=resources))
            assert isinstance(after, dg.SkipReason)
    finally:
        handle.stop()


def test_files_a_failed_load_left_pending_are_asked_for_again(fresh_db, tmp_path: Path) -> None:
    """Dagster runs a run key once: the key carries a 15-minute retry window, so files a failed
    run left pending get a new run in the next window, never while a load is under way."""
    from orchestration.ingest.file_assets import RETRY_WINDOW_SECONDS, build_file_drop_sensor

    home = tmp_path / "home"
    (home / "drop" / "pos").mkdir(parents=True)
    shutil.copy(TEMPLATE, home / "drop" / "pos" / "pos_20261120.csv")
    resources = _resources(fresh_db, home)
    now = [1_796_000_000.0]  # pinned: 2026-11-30
    sensor = build_file_drop_sensor("pos", clock=lambda: now[0])
    with dg.instance_for_test() as instance:

        def evaluate():
            return sensor(dg.build_sensor_context(instance=instance, resources=resources))

        first = evaluate()
        assert isinstance(first, dg.RunRequest) and "pos_20261120.csv" in first.run_key
        run = dg.DagsterRun(
            job_name="__ASSET_JOB", run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED, tags={"dagster/sensor_name": sensor.name},
        )  # fmt: skip
        instance.add_run(run)
        busy = evaluate()
        assert isinstance(busy, dg.SkipReason) and run.run_id[:8] in busy.skip_message
        instance.report_run_failed(run)
        # the load failed and the file is still pending: the same window repeats its key
        # (which Dagster does not run again), the next one asks again
        assert evaluate().run_key == first.run_key
        now[0] += RETRY_WINDOW_SECONDS
        again = evaluate()
        assert isinstance(again, dg.RunRequest) and again.run_key != first.run_key
        assert "pos_20261120.csv" in again.run_key
