"""The GX suites as Dagster asset checks: on the right assets with the right severity and
blocking, and executed through Dagster against real PostgreSQL (a failed blocking check stops
the asset downstream of it; the volume check compares with its previous run's count)."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster import ExecuteInProcessResult

from connectors.channels_config import load_channels
from connectors.merchant_systems import SOURCES
from connectors.raw_schema import ensure_raw_tables
from kernel.database import PgConn
from orchestration.ingest.assets import orders_asset_key
from orchestration.quality.expectation_checks import expectation_check, expectation_checks
from orchestration.resources import WarehouseResource
from quality.expectations import targets
from tests.databases import drop_database, new_database

ROOT = Path(__file__).resolve().parents[2]


def _specs() -> dict[tuple[str, str], dg.AssetCheckSpec]:
    return {
        (spec.asset_key.to_user_string(), spec.name): spec
        for check in expectation_checks()
        for spec in check.check_specs
    }


def test_every_suite_is_a_check_on_its_asset_with_its_severity() -> None:
    from orchestration.definitions import defs

    specs = _specs()
    graph = defs.get_repository_def().asset_graph
    # every checked asset exists in the graph and every check is in the definitions
    assert {dg.AssetKey.from_user_string(a) for a, _ in specs} <= graph.get_all_asset_keys()
    gx_checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert set(specs) <= gx_checks

    def severity(asset: str, name: str) -> tuple[bool, str]:
        spec = specs[(asset, name)]
        return spec.blocking, spec.metadata["severity"]

    for channel in load_channels().channels:
        # bad raw orders would mislead routing and risk: they block; volume only warns
        assert severity(f"raw/{channel}_orders", "gx_raw_orders") == (True, "ERROR")
        assert severity(f"raw/{channel}_orders", "gx_raw_orders_volume") == (False, "WARN")
    for source in SOURCES:
        assert severity(f"raw/{source.table}", f"gx_raw_{source.table}") == (False, "WARN")
    assert set(targets.MERCHANT_TABLES) == {s.table for s in SOURCES}
    awaiting = "intermediate/int_orders_awaiting_allocation"
    assert severity(awaiting, "gx_int_orders_awaiting_allocation") == (True, "ERROR")
    for mart in ("fct_orders", "order_holographic", "fct_order_items"):
        assert severity(f"marts/{mart}", f"gx_{mart}") == (False, "WARN")
    assert severity("raw/risk_feedback", "gx_raw_risk_feedback") == (False, "WARN")
    assert len(specs) == 2 * len(load_channels().channels) + len(SOURCES) + 5


@pytest.mark.slow
def test_loading_the_definitions_imports_no_great_expectations() -> None:
    # GX takes seconds to import: only a running check may pay for it
    probe = "import sys, orchestration.definitions; print('great_expectations' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.fixture(scope="module")
def warehouse(pg: PgConn) -> Iterator[PgConn]:
    conn = new_database(pg, "gxdg_")
    with psycopg.connect(conn.url(), autocommit=True) as db:
        ensure_raw_tables(db, ["taobao"])
    yield conn
    drop_database(pg, conn)


@pytest.fixture(scope="module")
def now(warehouse: PgConn) -> datetime:
    """The instant the test's data is placed around: the database's clock, which stamps
    `loaded_at` as in production (the checks find a run's rows by it)."""
    with psycopg.connect(warehouse.url()) as db:
        return db.execute("select now()").fetchone()[0]


class LoadConfig(dg.Config):
    now: str  # ISO time the orders' modified times are placed before
    orders: int = 40
    future_order: bool = False  # one order modified two days after "now"


def _load(context: dg.AssetExecutionContext, config: LoadConfig, warehouse: WarehouseResource):
    with warehouse.connect() as conn:
        conn.execute("delete from raw.taobao_orders")
        conn.execute(
            "insert into raw.taobao_orders (channel, platform_order_no, source_modified_at,"
            " payload, content_hash, loaded_at, run_id)"
            " select 'taobao', 'T' || g, %(now)s::timestamptz - g * interval '1 minute', '{}',"
            " md5(g::text), now(), %(run)s from generate_series(1, %(n)s) g",
            {"now": config.now, "run": context.run.run_id, "n": config.orders},
        )
        if config.future_order:
            conn.execute(
                "update raw.taobao_orders set source_modified_at = %(at)s"
                " where platform_order_no = 'T1'",
                {"at": datetime.fromisoformat(config.now) + timedelta(days=2)},
            )


@dg.asset(key=orders_asset_key("taobao"))
def taobao_orders_loaded(
    context: dg.AssetExecutionContext, config: LoadConfig, warehouse: WarehouseResource
) -> None:
    _load(context, config, warehouse)


@dg.asset(deps=[orders_asset_key("taobao")])
def downstream_of_taobao() -> None:
    """Stands for staging and the decisions: must not run on bad raw orders."""


@pytest.mark.slow
def test_checks_run_through_dagster_and_a_failed_blocking_check_stops_downstream(
    warehouse: PgConn, now: datetime
) -> None:
    checks = [
        expectation_check(orders_asset_key("taobao"), targets.raw_orders("taobao"),
                          blocking=True, clock=lambda: now),
        expectation_check(orders_asset_key("taobao"), targets.raw_orders_volume("taobao"),
                          blocking=False, clock=lambda: now),
    ]  # fmt: skip
    resources = {"warehouse": WarehouseResource(pg_url=warehouse.url())}
    instance = dg.DagsterInstance.ephemeral()

    def run(orders: int, future_order: bool = False) -> ExecuteInProcessResult:
        config = {"ops": {"raw__taobao_orders": {"config": {
            "now": now.isoformat(), "orders": orders, "future_order": future_order}}}}  # fmt: skip
        return dg.materialize(
            [taobao_orders_loaded, downstream_of_taobao, *checks],
            resources=resources,
            instance=instance,
            run_config=config,
            raise_on_error=False,
        )

    def evaluation(result: ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
        (found,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
        return found

    good = run(40)
    assert good.success
    passed = evaluation(good, "gx_raw_orders")
    assert passed.passed and passed.metadata["rows_checked"].value == 40
    assert passed.metadata["scope"].value == f"rows of run {good.run_id}"
    assert evaluation(good, "gx_raw_orders_volume").metadata["row_count"].value == 40
    materialized = {e.asset_key for e in good.get_asset_materialization_events()}
    assert dg.AssetKey("downstream_of_taobao") in materialized

    bad = run(30, future_order=True)
    failed = evaluation(bad, "gx_raw_orders")
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    (expectation,) = failed.metadata["failed_expectations"].value
    assert expectation["expectation"] == "expect_column_values_to_be_between(source_modified_at)"
    assert expectation["samples"][0]["platform_order_no"] == "T1"
    # blocking: the asset downstream of the bad raw table was not materialised
    materialized = {e.asset_key for e in bad.get_asset_materialization_events()}
    assert dg.AssetKey("downstream_of_taobao") not in materialized
    # 40 -> 30 rows is more than the 1 % a raw table may shrink: the volume check warns
    volume = evaluation(bad, "gx_raw_orders_volume")
    assert not volume.passed and volume.severity == dg.AssetCheckSeverity.WARN
    assert volume.metadata["previous_row_count"].value == 40


_EMPTY_RUN_PROBE = """
import sys
import dagster as dg
from orchestration.ingest.assets import orders_asset_key
from orchestration.quality.expectation_checks import expectation_check
from orchestration.resources import WarehouseResource
from quality.expectations import targets

@dg.asset(key=orders_asset_key("taobao"))
def taobao_orders_found_nothing_new() -> None:
    pass  # a pull whose window held no new or changed order

check = expectation_check(orders_asset_key("taobao"), targets.raw_orders("taobao"), blocking=True)
result = dg.materialize(
    [taobao_orders_found_nothing_new, check],
    resources={"warehouse": WarehouseResource(pg_url=sys.argv[1])},
)
(evaluation,) = result.get_asset_check_evaluations()
print(evaluation.passed, evaluation.metadata["rows_checked"].value,
      evaluation.metadata["scope"].value.endswith(": none"),
      "great_expectations" in sys.modules)
"""


@pytest.mark.slow
def test_a_run_that_wrote_no_rows_passes_its_row_checks_without_great_expectations(
    warehouse: PgConn,
) -> None:
    """A pull that found nothing new (most scheduled pulls in live mode: pushes loaded the
    orders first) passes `gx_raw_orders` over its no rows, in a process that never imports
    Great Expectations; the table's earlier rows, even bad ones, are not its to check."""
    with psycopg.connect(warehouse.url(), autocommit=True) as db:
        db.execute("delete from raw.taobao_orders")
        db.execute(
            "insert into raw.taobao_orders (channel, platform_order_no, source_modified_at,"
            " payload, content_hash, loaded_at, run_id)"
            " values ('taobao', 'T1', now() + interval '2 days', '{}', 'h', now(), 'earlier')"
        )
    result = subprocess.run(
        [sys.executable, "-c", _EMPTY_RUN_PROBE, warehouse.url()],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "0", "True", "False"]


def test_only_suites_of_single_row_expectations_pass_over_no_rows() -> None:
    from quality.expectations.runner import empty_result, passes_when_empty

    assert passes_when_empty("raw_orders") and passes_when_empty("fct_order_items")
    # a row count and a newest-row time are about the table: no rows is not a pass
    assert not passes_when_empty("raw_orders_volume")
    result = empty_result(targets.raw_orders("taobao"), "rows of run r1")
    assert result.success and result.rows_checked == 0
    assert "expect_compound_columns_to_be_unique(channel,platform_order_no)" in {
        o.expectation for o in result.outcomes
    }


def test_a_step_before_a_gx_check_starts_importing_great_expectations() -> None:
    """The import (seconds) overlaps a pull's or dbt's work when a GX check follows in the run
    (the definitions themselves do not import it); a run without one does not pay for it."""
    from orchestration.quality.expectation_checks import runs_expectation_checks

    gx = dg.AssetCheckKey(dg.AssetKey(["intermediate", "x"]), "gx_int_orders_awaiting_allocation")
    dbt_test = dg.AssetCheckKey(dg.AssetKey(["intermediate", "x"]), "unique_x_key")
    assert runs_expectation_checks(dg.DagsterRun(job_name="j", asset_check_selection={gx}))
    assert runs_expectation_checks(dg.DagsterRun(job_name="j"))  # every check of its job
    assert not runs_expectation_checks(
        dg.DagsterRun(job_name="j", asset_check_selection={dbt_test})
    )
    probe = (
        "import sys\n"
        "import dagster as dg\n"
        "from orchestration.quality.expectation_checks import start_import_if_checked\n"
        "from orchestration.ingest.assets import marketplace_assets\n"
        "assert 'great_expectations' not in sys.modules\n"
        "test = dg.AssetCheckKey(dg.AssetKey(['intermediate', 'x']), 'unique_x_key')\n"
        "dbt_only = dg.DagsterRun(job_name='j', asset_check_selection={test})\n"
        "assert start_import_if_checked(dbt_only) is None\n"
        "first = start_import_if_checked(dg.DagsterRun(job_name='j'))\n"
        "assert start_import_if_checked(dg.DagsterRun(job_name='j')) is first\n"
        "first.join(180); print('great_expectations' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"]
