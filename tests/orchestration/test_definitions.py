"""The Definitions load, validate, and wire every layer together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from connectors.channels_config import load_channels

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_definitions_hold_every_layer() -> None:
    from connectors.channels_config import load_channels
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    for channel in load_channels().of_kind("marketplace"):
        assert f"raw/{channel}_orders" in keys
    assert "marts/fct_orders" in keys
    assert "reporting/channel_order_summary" in keys
    # dbt tests are asset checks
    assert any(True for _ in repo.asset_graph.asset_check_keys)
    # the marts model reads (transitively) from every marketplace ingestion asset
    upstream = repo.asset_graph.get(dg.AssetKey(["marts", "fct_orders"]))
    ancestors = {k.to_user_string() for k in repo.asset_graph.upstream_key_iterator(upstream.key)}
    assert ancestors  # has parents
    schedules = {s.name for s in defs.schedules or []}
    assert {f"{c}_orders_schedule" for c in load_channels().of_kind("marketplace")} <= schedules


def test_nightly_dbt_job_runs_every_data_test_over_every_row() -> None:
    from orchestration.dbt.assets import DbtBuildConfig, dbt_args
    from orchestration.definitions import defs

    job = defs.resolve_job_def("dbt_full_data_tests")
    # checks only: no model is rebuilt, every dbt test runs
    assert not job.asset_layer.selected_asset_keys
    checks = job.asset_layer.asset_graph.asset_check_keys
    assert any(c.name.startswith("non_negative") for c in checks)
    assert dbt_args(DbtBuildConfig(test_all_rows=True)) == [
        "build", "--vars", '{"test_all_rows": true}',
    ]  # fmt: skip
    assert dbt_args(DbtBuildConfig()) == ["build"]
    # checks only: `dbt test`, so that a failed test does not skip the tests downstream of it
    assert dbt_args(DbtBuildConfig(test_all_rows=True), checks_only=True)[0] == "test"
    schedules = {s.name: s for s in defs.schedules or []}
    assert schedules["dbt_full_data_tests_schedule"].job_name == "dbt_full_data_tests"


def test_dagster_definitions_validate_exits_zero(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_dbt_parse_passes(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(BIN / "dbt"),
            "parse",
            "--project-dir",
            str(ROOT / "dbt_project"),
            "--profiles-dir",
            str(ROOT / "dbt_project"),
            "--target-path",
            str(tmp_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "manifest.json").exists()


def test_the_nightly_re_pull_runs_in_its_own_job_only() -> None:
    """The 24 h re-pull check re-reads a day of orders: it must not ride along with every
    scheduled pull, push run or full run (as a check of the raw asset it did)."""
    from orchestration.definitions import defs

    def re_pulls(job_name: str) -> set[str]:
        graph = defs.resolve_job_def(job_name).asset_layer.asset_graph
        return {
            c.asset_key.to_user_string()
            for c in graph.asset_check_keys
            if c.name == "no_orders_missed_last_24h"
        }

    assert re_pulls("nightly_reconciliation") >= {"raw/jd_orders", "raw/taobao_orders"}
    assert re_pulls("orderpulse_full_run") == set()
    assert re_pulls("jd_push_ingest") == set()
    schedule = next(s for s in defs.schedules if s.name == "jd_orders_schedule")
    assert re_pulls(schedule.job_name) == set()
    # the raw asset's Great Expectations checks still run with each pull
    pull = defs.resolve_job_def(schedule.job_name).asset_layer.asset_graph
    assert any(c.name.startswith("gx_") for c in pull.asset_check_keys)


def test_volume_checks_run_hourly_in_their_own_job_not_with_each_load() -> None:
    """A pull that found nothing new must not import Great Expectations for the volume check:
    the loads' runs check the rows they wrote, the hourly job every channel's volume."""
    from orchestration.definitions import defs

    def checks(job_name: str) -> set[tuple[str, str]]:
        job = defs.resolve_job_def(job_name)
        selected = job.asset_layer.asset_graph.asset_check_keys
        return {(c.asset_key.to_user_string(), c.name) for c in selected}

    schedules = {s.name: s for s in defs.schedules or []}
    sensors = {s.name: s for s in defs.sensors or []}
    loads = {
        "jd": schedules["jd_orders_schedule"].job_name,
        "h5mall": schedules["h5mall_orders_schedule"].job_name,
        "regional_a": sensors["regional_a_sftp_sensor"].job_name,
        "pos": sensors["pos_drop_folder_sensor"].job_name,
    }
    for channel, job_name in loads.items():
        selected = checks(job_name)
        assert (f"raw/{channel}_orders", "gx_raw_orders") in selected, job_name
        assert not any(name == "gx_raw_orders_volume" for _, name in selected), job_name
    assert not any(n == "gx_raw_orders_volume" for _, n in checks("jd_push_ingest"))
    volume = schedules["raw_volume_checks_schedule"]
    assert volume.job_name == "raw_volume_checks" and volume.cron_schedule == "7 * * * *"
    assert checks("raw_volume_checks") == {
        (f"raw/{channel}_orders", "gx_raw_orders_volume") for channel in load_channels().channels
    }
    # the full run still checks everything once
    assert ("raw/jd_orders", "gx_raw_orders_volume") in checks("orderpulse_full_run")
