"""The alert wiring in Dagster and the scheduled reports: the delivery sensor, the run-failure
and failed-check sensors, the digest and reconciliation jobs and schedules (real PostgreSQL,
`build_sensor_context` / `build_run_status_sensor_context`, an ephemeral instance)."""

from __future__ import annotations

import csv
import email
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from orchestration.quality.alerting import (
    alert_delivery,
    check_failure_alerts,
    daily_health_digest_job,
    daily_health_digest_schedule,
    monthly_reconciliation_job,
    monthly_reconciliation_schedule,
    run_failure_alerts,
)
from orchestration.resources import WarehouseResource
from quality.alert_reports import health_digest
from quality.alerts import Alert, raise_alerts
from quality.mailer import csv_cell

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        yield c


@pytest.fixture()
def resources(fresh_db) -> dict:
    return {"warehouse": WarehouseResource(pg_url=fresh_db.url())}


@pytest.fixture()
def outbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SMTP server and no robot in the environment: mail goes to this home's outbox."""
    for var in ("SMTP_HOST", "ROBOT_WEBHOOK_URL"):
        monkeypatch.delenv(f"ORDERPULSE_{var}", raising=False)
    monkeypatch.setenv("ORDERPULSE_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    return tmp_path


def _rules(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select rule, dedup_key, delivery from ops.alerts order by id").fetchall()


def test_alert_delivery_sensor_mails_pending_alerts(conn, resources, outbox_home: Path) -> None:
    raise_alerts(conn, [Alert("stock_below_safety", "SKU-9 paused", {"sku": "SKU-9"}, "sku=9")])
    with dg.instance_for_test() as instance:
        result = alert_delivery(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, dg.SkipReason)
        assert result.skip_message.startswith("0 sent, 1 to the outbox, 0 failed")
        again = alert_delivery(dg.build_sensor_context(instance=instance, resources=resources))
        assert again.skip_message.startswith("0 sent, 0 to the outbox")
    assert _rules(conn) == [("stock_below_safety", "sku=9", "outbox")]
    assert len(list((outbox_home / "outbox").glob("*.eml"))) == 1


@dg.op
def _explode() -> None:
    raise RuntimeError("warehouse unreachable")


@dg.job
def nightly_load() -> None:
    _explode()


def test_run_failure_sensor_raises_one_alert_per_job(conn, resources) -> None:
    with dg.instance_for_test() as instance:
        for _ in range(2):
            result = nightly_load.execute_in_process(instance=instance, raise_on_error=False)
            assert not result.success
            context = dg.build_run_status_sensor_context(
                sensor_name="run_failure_alerts",
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=result.get_run_failure_event(),
                resources=resources,
            ).for_run_failure()
            run_failure_alerts(context)
    # the second failure of the same job is within the cool-down
    assert _rules(conn) == [("run_failure", "job=nightly_load", "pending")]
    facts = conn.execute("select facts from ops.alerts").fetchone()[0]
    assert facts["job"] == "nightly_load" and facts["run_id"]


@dg.asset
def orders_snapshot() -> int:
    return 1


@dg.asset_check(asset=orders_snapshot, blocking=True)
def keys_unique() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset=orders_snapshot)
def row_count_change() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=orders_snapshot)
def amounts_in_range() -> dg.AssetCheckResult:
    # ERROR but not blocking (like a dbt data test of the nightly job): no email
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR)


@pytest.mark.slow  # a real materialisation with four checks: 4-10 s on a busy 2-core host
@pytest.mark.filterwarnings("ignore:Function `EventMethods.get_event_records` is deprecated")
def test_check_failure_sensor_alerts_on_failed_blocking_checks_only(conn, resources) -> None:
    with dg.instance_for_test() as instance:
        dg.materialize(
            [orders_snapshot, keys_unique, row_count_change, amounts_in_range],
            instance=instance,
            raise_on_error=False,
        )
        context = dg.build_sensor_context(instance=instance, resources=resources)
        result = check_failure_alerts(context)
        assert result.skip_message == "1 failed blocking check(s), 1 raised"
        # the cursor moved past them: nothing new on the next tick
        again = dg.build_sensor_context(
            instance=instance, resources=resources, cursor=context.cursor
        )
        assert check_failure_alerts(again).skip_message.startswith("0 failed")
    assert _rules(conn) == [("check_failure", "check=orders_snapshot:keys_unique", "pending")]


def _health_mart(conn: psycopg.Connection) -> None:
    conn.execute(
        "create table marts.order_health_daily (day date, channel text, ohi numeric, "
        "timeliness numeric, completeness numeric, consistency numeric, accuracy numeric, "
        "controllability numeric)"
    )
    conn.execute(
        "insert into marts.order_health_daily values "
        "('2026-11-23', 'taobao', 95, 96, 99, 94, 97, 90), "
        "('2026-11-24', 'taobao', 93.5, 95, 99, 92, 96, 88), "
        "('2026-11-24', 'pdd', 61.3, 40, 90, 70, 80, 50), "
        "('2026-11-10', 'pdd', 99, 99, 99, 99, 99, 99)"  # outside the 7 days
    )


def test_health_digest_lists_every_channel_with_a_seven_day_chart(conn) -> None:
    assert health_digest(conn, date(2026, 11, 24)) is None  # no mart yet: no report
    _health_mart(conn)
    alert = health_digest(conn, date(2026, 11, 24))
    assert alert.subject == "Order health 2026-11-24: 1 channel(s) under 80"
    assert alert.facts["below_threshold"] == ["pdd"] and alert.facts["lowest_ohi"] == 61.3
    assert alert.chart.x[0] == "2026-11-18" and alert.chart.x[-1] == "2026-11-24"
    assert alert.chart.series["taobao"][-2:] == [95.0, 93.5]
    assert alert.chart.series["pdd"][:6] == [None] * 6  # gaps, not zeros
    assert {r["channel"]: r["timeliness"] for r in alert.table} == {"pdd": 40.0, "taobao": 95.0}


def test_digest_job_raises_the_digest_and_schedule_runs_it_daily(conn, resources) -> None:
    _health_mart(conn)
    result = daily_health_digest_job.execute_in_process(
        resources=resources,
        run_config={"ops": {"raise_health_digest": {"config": {"day": "2026-11-25"}}}},
    )
    assert result.success
    assert _rules(conn) == [("daily_health_digest", "day=2026-11-24", "pending")]
    at = datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI)
    request = daily_health_digest_schedule(dg.build_schedule_context(scheduled_execution_time=at))
    assert request.run_key == "digest-2026-11-25"


def test_monthly_reconciliation_mails_finance_a_safe_csv_on_the_25th(conn, resources) -> None:
    conn.execute(
        "create table marts.fct_platform_reconciliation_monthly (channel text, month date, "
        "orders bigint, goods_value numeric, platform_coupons numeric, shop_coupons numeric, "
        "discount_amount numeric, freight numeric, paid_amount numeric, refund_amount numeric, "
        "refunded_orders bigint, net_amount numeric, reconciliation_gap numeric)"
    )
    conn.execute(
        "insert into marts.fct_platform_reconciliation_monthly values "
        "('taobao', '2026-10-01', 120, 1000, 50, 20, 70, 30, 960, 40, 2, 920, 0), "
        "('=HYPERLINK(\"x\")', '2026-10-01', 1, 10, 0, 0, 0, 0, 11, 0, 0, 11, -1.5), "
        "('jd', '2026-11-01', 5, 50, 0, 0, 0, 0, 50, 0, 0, 50, 0)"  # this month: not yet
    )
    before = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 24, 9, 0))
    assert isinstance(monthly_reconciliation_schedule(before), dg.SkipReason)
    on_day = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
    )
    request = monthly_reconciliation_schedule(on_day)
    assert request.run_key == "reconciliation-2026-11"
    result = monthly_reconciliation_job.execute_in_process(
        resources=resources, run_config=request.run_config
    )
    assert result.success
    subject, recipients, attachments = conn.execute(
        "select subject, recipients, attachments from ops.alerts"
    ).fetchone()
    assert subject.startswith("Platform reconciliation 2026-10: 2 platform(s), gaps on =HYP")
    assert recipients == ["finance@orderpulse.example"]
    [attachment] = attachments
    assert attachment["filename"] == "platform_reconciliation_2026-10.csv"
    rows = list(csv.DictReader(io.StringIO(attachment["content"])))
    assert [r["channel"] for r in rows] == ['\'=HYPERLINK("x")', "taobao"]
    assert rows[0]["reconciliation_gap"] == "-1.5"  # a negative number stays a number
    assert csv_cell("+1") == "'+1" and csv_cell("@SUM") == "'@SUM" and csv_cell(-2) == -2


def test_outbox_email_of_the_digest_carries_the_chart(conn, outbox_home: Path) -> None:
    from quality.alerts import deliver_pending

    _health_mart(conn)
    raise_alerts(conn, [health_digest(conn, date(2026, 11, 24))], now=NOW)
    assert deliver_pending(conn, now=NOW).outbox == 1
    [eml] = (outbox_home / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["To"] == "ops-lead@orderpulse.example"
    assert [p.get_content_type() for p in msg.walk()].count("image/png") == 1
