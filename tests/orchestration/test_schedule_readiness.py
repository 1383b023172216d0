"""Schedules that read the warehouse skip, naming what is missing, until it is built: on a
fresh `orderpulse up` they fell due during the first full run and failed on a missing relation
(the hourly stock reconciliation did, in the live-mode test)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg

from kernel.database import PgConn
from orchestration.resources import WarehouseResource

DUE = datetime(2026, 12, 4, 20, 5, tzinfo=UTC)


def _evaluate(schedule: dg.ScheduleDefinition, db: PgConn) -> list:
    context = dg.build_schedule_context(
        scheduled_execution_time=DUE, resources={"warehouse": WarehouseResource(pg_url=db.url())}
    )
    data = schedule.evaluate_tick(context)
    return [*(data.run_requests or []), *([data.skip_message] if data.skip_message else [])]


def test_the_stock_reconciliation_waits_for_the_wms_stock_model(fresh_db: PgConn) -> None:
    from orchestration.fulfillment.inventory import stock_reconciliation_schedule

    (skip,) = _evaluate(stock_reconciliation_schedule, fresh_db)
    assert isinstance(skip, str)
    assert "not built yet" in skip and "staging.stg_merchant_systems__wms_stock" in skip

    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        conn.execute("create view staging.stg_merchant_systems__wms_stock as select 1 as x")
    (request,) = _evaluate(stock_reconciliation_schedule, fresh_db)
    assert isinstance(request, dg.RunRequest)


def test_the_nightly_data_tests_wait_for_every_dbt_model(
    fresh_db: PgConn, dbt_manifest: Path
) -> None:
    from orchestration.dbt.definitions import dbt_full_data_tests_schedule
    from orchestration.readiness import dbt_relations

    relations = dbt_relations()
    assert "marts.fct_orders" in relations
    assert "staging.stg_merchant_systems__wms_stock" in relations
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        # all built but one mart: still skipped, naming it
        for relation in relations:
            if relation != "marts.fct_orders":
                conn.execute(f"create table {relation} ()")
        (skip,) = _evaluate(dbt_full_data_tests_schedule, fresh_db)
        assert isinstance(skip, str) and "marts.fct_orders" in skip
        conn.execute("create table marts.fct_orders ()")
    (request,) = _evaluate(dbt_full_data_tests_schedule, fresh_db)
    assert isinstance(request, dg.RunRequest)


def test_the_weekly_risk_retrain_waits_for_the_order_history(fresh_db: PgConn) -> None:
    from orchestration.fulfillment.risk_model import risk_model_weekly_schedule

    assert risk_model_weekly_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    (skip,) = _evaluate(risk_model_weekly_schedule, fresh_db)
    assert isinstance(skip, str) and "intermediate.int_orders" in skip
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        conn.execute("create table intermediate.int_orders ()")
        conn.execute("create table intermediate.int_behaviour_events ()")
    (request,) = _evaluate(risk_model_weekly_schedule, fresh_db)
    assert isinstance(request, dg.RunRequest)
