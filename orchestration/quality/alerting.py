"""Alert wiring: the delivery sensor (ops.alerts → email and robot), the run-failure and
failed-blocking-check sensors, and the scheduled reports (daily health digest, monthly
reconciliation for finance). The logic lives in `quality.alerts` / `quality.alert_reports`.

No `from __future__ import annotations` here: Dagster reads the op config class from the
annotation itself.
"""

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from kernel.timezones import BUSINESS_TIMEZONE
from orchestration.resources import WarehouseResource

LOCAL_TZ = BUSINESS_TIMEZONE  # the merchant's day: reports and their schedules follow it


# -- delivery --------------------------------------------------------------------------------


@dg.sensor(
    name="alert_delivery",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Mails every pending or failed alert in ops.alerts to its owner (and urgent "
    "ones to the group robot); SMTP from ORDERPULSE_SMTP_*, else .eml files in the outbox.",
)
def alert_delivery(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    from quality.alerts import deliver_pending

    with warehouse.connect() as conn:
        report = deliver_pending(conn)
    if report.failed or report.robot_failed:
        context.log.warning(f"alert delivery: {report.errors[0]}")
    return dg.SkipReason(
        f"{report.sent} sent, {report.outbox} to the outbox, {report.failed} failed "
        f"(kept for the next tick), robot {report.robot_sent} sent / {report.robot_failed} failed"
    )


# -- failures --------------------------------------------------------------------------------


def _raise(warehouse: WarehouseResource, alerts: list, now: datetime | None = None) -> list[int]:
    from quality.alerts import raise_alerts

    with warehouse.connect() as conn:
        return raise_alerts(conn, alerts, now=now)


@dg.run_failure_sensor(
    name="run_failure_alerts",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises a run_failure alert per failed job (one per job within its cool-down).",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    from quality.alerts import Alert

    run = context.dagster_run
    message = context.failure_event.message or ""
    alert = Alert(
        rule="run_failure",
        subject=f"Run of {run.job_name} failed",
        facts={
            "job": run.job_name,
            "run_id": run.run_id,
            "error": message.splitlines()[0][:300] if message else "",
        },
        dedup_key=f"job={run.job_name}",
    )
    _raise(warehouse, [alert])


@dg.sensor(
    name="check_failure_alerts",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises a check_failure alert for each failed blocking asset check "
    "(ERROR severity), one per check within its cool-down.",
)
def check_failure_alerts(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    from quality.alerts import Alert

    # the id orders events on PostgreSQL; a run-sharded store (SQLite) needs the run time
    tick = datetime.now(UTC)
    cursor = json.loads(context.cursor) if context.cursor else None
    after = (
        dg.RunShardedEventsCursor(
            id=cursor["storage_id"],
            run_updated_after=datetime.fromisoformat(cursor["run_updated_after"]),
        )
        if cursor
        else None
    )
    # deprecated for Dagster 2.0, but still the one public query over check evaluations of
    # every asset (the fetch_* successors cover materializations and observations only)
    records = context.instance.get_event_records(
        dg.EventRecordsFilter(
            event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after
        ),
        ascending=True,
        limit=500,
    )
    alerts = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        # blocking checks only: a failed WARN check or a failed dbt data test of the nightly
        # job shows in the UI; mailing each would drown the one that stops decisions
        if evaluation.passed or not evaluation.blocking:
            continue
        asset = evaluation.asset_key.to_user_string()
        alerts.append(
            Alert(
                rule="check_failure",
                subject=f"Blocking check {evaluation.check_name} failed on {asset}",
                facts={
                    "asset": asset,
                    "check": evaluation.check_name,
                    "run_id": record.event_log_entry.run_id,
                    "description": (evaluation.description or "")[:300],
                },
                dedup_key=f"check={asset}:{evaluation.check_name}",
            )
        )
    last_id = records[-1].storage_id if records else (cursor or {}).get("storage_id", 0)
    context.update_cursor(
        json.dumps({"storage_id": last_id, "run_updated_after": tick.isoformat()})
    )
    raised = _raise(warehouse, alerts) if alerts else []
    return dg.SkipReason(f"{len(alerts)} failed blocking check(s), {len(raised)} raised")


# -- scheduled reports -----------------------------------------------------------------------


class ReportDay(dg.Config):
    day: str | None = None  # ISO date the report is made on; unset = today (Beijing)


def _report_day(config: ReportDay) -> date:
    if config.day:
        return date.fromisoformat(config.day)
    return datetime.now(UTC).astimezone(ZoneInfo(LOCAL_TZ)).date()


@dg.op
def raise_health_digest(
    context: dg.OpExecutionContext, config: ReportDay, warehouse: WarehouseResource
) -> None:
    """The digest of yesterday (the last whole day) as a daily_health_digest alert."""
    from quality.alert_reports import health_digest
    from quality.alerts import raise_alerts

    day = _report_day(config) - timedelta(days=1)
    with warehouse.connect() as conn:
        alert = health_digest(conn, day)
        if alert is None:
            context.log.info("no marts.order_health_daily rows for the digest yet")
            return
        context.log.info(f"health digest for {day}: {len(raise_alerts(conn, [alert]))} raised")


@dg.op
def raise_monthly_reconciliation(
    context: dg.OpExecutionContext, config: ReportDay, warehouse: WarehouseResource
) -> None:
    """Last month's per-platform reconciliation for finance, CSV attached."""
    from quality.alert_reports import monthly_reconciliation
    from quality.alerts import raise_alerts

    with warehouse.connect() as conn:
        alert = monthly_reconciliation(conn, _report_day(config))
        if alert is None:
            context.log.info("no reconciliation rows for last month yet")
            return
        context.log.info(f"{alert.subject}: {len(raise_alerts(conn, [alert]))} raised")


@dg.job(description="Raise the daily health digest email (OHI per channel, 7-day chart).")
def daily_health_digest_job() -> None:
    raise_health_digest()


@dg.job(description="Raise the monthly per-platform reconciliation email for finance.")
def monthly_reconciliation_job() -> None:
    raise_monthly_reconciliation()


def _day_config(op: str, day: date) -> dict:
    return {"ops": {op: {"config": {"day": day.isoformat()}}}}


@dg.schedule(
    cron_schedule="0 8 * * *",
    execution_timezone=LOCAL_TZ,
    job=daily_health_digest_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_health_digest_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.astimezone(ZoneInfo(LOCAL_TZ)).date()
    return dg.RunRequest(
        run_key=f"digest-{day}", run_config=_day_config("raise_health_digest", day)
    )


@dg.schedule(
    cron_schedule="0 9 * * *",
    execution_timezone=LOCAL_TZ,
    job=monthly_reconciliation_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def monthly_reconciliation_schedule(context: dg.ScheduleEvaluationContext):
    from quality.alert_rules import load_alert_config

    # the day lives in config/alerts.yaml (operations may move it), so the cron is daily
    wanted = int(load_alert_config().rule("monthly_reconciliation").params.get("day_of_month", 25))
    day = context.scheduled_execution_time.astimezone(ZoneInfo(LOCAL_TZ)).date()
    if day.day != wanted:
        return dg.SkipReason(f"reconciliation is mailed on day {wanted} of the month")
    return dg.RunRequest(
        run_key=f"reconciliation-{day:%Y-%m}",
        run_config=_day_config("raise_monthly_reconciliation", day),
    )


def alerting_definitions() -> dg.Definitions:
    return dg.Definitions(
        sensors=[alert_delivery, run_failure_alerts, check_failure_alerts],
        jobs=[daily_health_digest_job, monthly_reconciliation_job],
        schedules=[daily_health_digest_schedule, monthly_reconciliation_schedule],
    )
