"""End to end on the embedded default: the sandbox (gateways over real HTTP, SFTP, ERP
database, ops API) -> every ingestion asset -> raw -> dbt -> marts -> the summary asset, on a
real PostgreSQL, checked against the sandbox's ground truth."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import psycopg
import pytest
from dagster_dbt import DbtCliResource

pytestmark = pytest.mark.slow

# statuses the platforms and carriers alone determine (the rest depend on OrderPulse decisions)
PLATFORM_DETERMINED = {"awaiting_payment", "in_transit", "delivered", "after_sale", "closed"}
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@pytest.fixture(scope="module")
def materialised(pg, tmp_path_factory):
    """One full materialisation of the graph into a fresh database, with the truth."""
    from orchestration.dbt.project import dbt_project
    from orchestration.definitions import defs
    from orchestration.resources import ChannelsResource, WarehouseResource, dbt_executable
    from sandbox.server import Sandbox
    from tests.databases import drop_database, new_database

    db = new_database(pg, "e2e_")

    home = tmp_path_factory.mktemp("e2e_home")
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    # PDD serves windows ending >= 3 min before its clock: the world ends 10 minutes ago
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with Sandbox(home, seed=5, orders=600, days=2, end=end, erp_admin_url=pg.url()) as sandbox:
        result = dg.materialize(
            assets,
            instance=dg.DagsterInstance.ephemeral(),
            resources={
                "warehouse": WarehouseResource(pg_url=db.url()),
                "channels": ChannelsResource(home=str(home)),
                "dbt": DbtCliResource(
                    project_dir=dbt_project,
                    profiles_dir=str(dbt_project.profiles_dir),
                    dbt_executable=dbt_executable(),
                ),
            },
            raise_on_error=False,
        )
        truth = sandbox.truth()
    yield db, result, truth
    drop_database(pg, db)


def test_run_succeeds_and_summary_counts_orders(materialised) -> None:
    _, result, truth = materialised
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    summary = result.asset_materializations_for_node("reporting__channel_order_summary")
    assert summary and summary[0].metadata["orders"].value == len(truth["orders"])


def test_fct_orders_holds_exactly_the_truth_with_paid_sums_to_the_cent(materialised) -> None:
    db, _, truth = materialised
    expected = {(o["channel"], o["platform_order_no"]) for o in truth["orders"]}
    want_paid: dict[str, Decimal] = defaultdict(Decimal)
    for o in truth["orders"]:
        want_paid[o["channel"]] += Decimal(o["paid_amount"])
    with psycopg.connect(db.url()) as conn:
        for table in ("marts.fct_orders", "marts.order_holographic"):
            rows = conn.execute(f"select channel, platform_order_no from {table}").fetchall()
            assert len(rows) == len(set(rows)), f"{table}: an order appears twice"
            assert set(rows) == expected, f"{table} differs from the truth"
        paid = dict(
            conn.execute("select channel, sum(paid_amount) from marts.fct_orders group by 1")
        )
    assert paid == dict(want_paid)


def test_platform_determined_statuses_match_the_truth(materialised) -> None:
    db, _, truth = materialised
    with psycopg.connect(db.url()) as conn:
        got = {
            (c, n): s
            for c, n, s in conn.execute(
                "select channel, platform_order_no, unified_status from marts.fct_orders"
            )
        }
    checked = wrong = 0
    for order in truth["orders"]:
        if order["status"] in PLATFORM_DETERMINED:
            checked += 1
            key = (order["channel"], order["platform_order_no"])
            wrong += got.get(key) != order["status"]
    assert checked > 100
    assert wrong == 0


def test_no_clear_mobile_number_in_any_marts_table(materialised) -> None:
    db, _, _ = materialised
    with psycopg.connect(db.url()) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            )
        ]
        assert "fct_orders" in tables
        for table in tables:
            text = conn.execute(
                f"select coalesce(string_agg(t::text, ' '), '') from marts.{table} t"
            ).fetchone()[0]
            assert not MOBILE.search(text), f"marts.{table} holds a clear mobile number"


def test_every_order_address_is_placed_or_flagged(materialised) -> None:
    db, _, truth = materialised
    with psycopg.connect(db.url()) as conn:
        total, parsed = conn.execute(
            "select count(*), count(*) filter (where is_parsed) from raw.address_geo"
        ).fetchone()
    assert total == len(truth["orders"])
    assert parsed >= 0.9 * total  # cross-border addresses are flagged, not placed


def test_nightly_dbt_job_tests_every_row(materialised) -> None:
    """The `dbt_full_data_tests` job runs every dbt test as an asset check over every row: a
    row that went bad long after its build (so outside any build's test scope) fails it."""
    from orchestration.dbt.definitions import dbt_defs, dbt_full_tests_job
    from orchestration.dbt.project import dbt_project
    from orchestration.resources import WarehouseResource, dbt_executable

    db, _, _ = materialised
    defs = dg.Definitions(
        assets=dbt_defs,
        jobs=[dbt_full_tests_job],
        resources={
            "warehouse": WarehouseResource(pg_url=db.url()),
            "dbt": DbtCliResource(
                project_dir=dbt_project,
                profiles_dir=str(dbt_project.profiles_dir),
                dbt_executable=dbt_executable(),
            ),
        },
    )
    job = defs.resolve_job_def("dbt_full_data_tests")
    with psycopg.connect(db.url()) as conn:
        key = conn.execute("select channel, platform_order_no, freight from marts.fct_orders "
                           "order by _written_xid limit 1").fetchone()  # fmt: skip
        conn.execute(
            "update marts.fct_orders set freight = -1 "
            "where channel = %s and platform_order_no = %s",
            key[:2],
        )
    try:
        result = job.execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
    finally:
        with psycopg.connect(db.url()) as conn:
            conn.execute(
                "update marts.fct_orders set freight = %s "
                "where channel = %s and platform_order_no = %s",
                [key[2], *key[:2]],
            )
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 100  # every dbt data test, no model rebuilt
    for op in ("dbt_before_decisions", "dbt_after_decisions"):
        assert not result.asset_materializations_for_node(op)
    failed = {e.check_name for e in evaluations if not e.passed}
    # the freight is negative, the order no longer adds up, and the monthly reconciliation
    # of the BI marts shows the gap
    assert failed == {
        "non_negative_fct_orders_freight",
        "amounts_reconcile_fct_orders_",
        "accepted_values_fct_platform_reconciliation_monthly_reconciliation_gap__False__0",
    }
