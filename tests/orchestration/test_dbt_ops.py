"""The dbt project split into Dagster ops: every data test runs in exactly one op, the one that
builds (or reads upstream) every model it reads, and it is a Dagster check of that op.

An op's dbt run selects its models with the op's `select`/`exclude` and picks the tests by dbt's
indirect selection (`dbt_project.yml`: `buildable`); Dagster declares an op's checks when it
loads the definitions. A test a later op's model feeds (a carrier track's `has_parent_order` on
`fct_orders`) run by the op that builds the tracks failed on a new warehouse, and a test run by
an op that does not declare it is logged as an observation, not a check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt.asset_utils import DAGSTER_DBT_EXCLUDE_METADATA_KEY as EXCLUDE
from dagster_dbt.asset_utils import DAGSTER_DBT_SELECT_METADATA_KEY as SELECT

from orchestration.dbt.assets import DBT_OPS
from orchestration.dbt.project import DBT_PROJECT_DIR


def _dbt_ls(tmp_path: Path, *selection: str) -> set[str]:
    """`dbt ls` of the data tests a build with `selection` runs (the project's own flags)."""
    from dbt.cli.main import dbtRunner  # here: importing it at collection touches logging

    args = ["ls", "--resource-type", "test", "--output", "name", "--quiet", *selection]
    args += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", str(tmp_path / "target")]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ORDERPULSE_HOME", str(tmp_path))  # the profile needs no server to list
        env.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
        env.delenv("DBT_INDIRECT_SELECTION", raising=False)
        result = dbtRunner().invoke(args)
    assert result.success, result.exception
    return set(result.result)


@pytest.fixture(scope="module")
def ops() -> dict[str, dg.AssetsDefinition]:
    from orchestration.definitions import defs

    found = {}
    for assets in defs.assets or []:
        if isinstance(assets, dg.AssetsDefinition) and assets.op.name in DBT_OPS:
            found[assets.op.name] = assets
    assert set(found) == set(DBT_OPS)
    return found


def test_every_data_test_runs_in_one_op_and_is_a_check_there(ops, tmp_path: Path) -> None:
    tests_of = {}
    for name, assets in ops.items():
        selection = []
        if SELECT in assets.op.tags:
            selection += ["--select", assets.op.tags[SELECT]]
        if EXCLUDE in assets.op.tags:
            selection += ["--exclude", assets.op.tags[EXCLUDE]]
        tests_of[name] = _dbt_ls(tmp_path, *selection)
    every_test = _dbt_ls(tmp_path)
    assert len(every_test) > 90
    runs = [test for tests in tests_of.values() for test in tests]
    assert sorted(runs) == sorted(every_test)  # each once, none left out
    for name, assets in ops.items():
        assert {key.name for key in assets.check_keys} == tests_of[name], name

    # the tracks are built beside the pulls; the test that reads fct_orders waits for it
    tracks_test = "has_parent_order_fct_logistics_tracks_ref_fct_orders_"
    assert tracks_test in tests_of["dbt_after_decisions"]
    tracks = dg.AssetKey(["marts", "fct_logistics_tracks"])
    assert tracks in ops["dbt_merchant_systems"].keys


def test_dbt_default_indirect_selection_would_run_it_before_fct_orders(tmp_path: Path) -> None:
    """Why the project sets `buildable`: under dbt's default a build of the merchant systems'
    op runs the tracks' test on `fct_orders`, which that op does not build."""
    from orchestration.dbt.assets import MERCHANT_SYSTEMS

    eager = _dbt_ls(tmp_path, "--select", MERCHANT_SYSTEMS, "--indirect-selection", "eager")
    buildable = _dbt_ls(tmp_path, "--select", MERCHANT_SYSTEMS)
    tracks_test = "has_parent_order_fct_logistics_tracks_ref_fct_orders_"
    assert tracks_test in eager
    assert tracks_test not in buildable
