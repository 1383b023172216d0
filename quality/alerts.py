"""Alerts: what a detector raises (`Alert`), how it is recorded (`raise_alerts` → `ops.alerts`)
and how it reaches people (`deliver_pending` → email, and the group robot when urgent).

Recording is set-based and de-duplicated: an alert whose (rule, dedup_key) already has a row
created within the rule's cool-down is skipped, so a breach that lasts an afternoon is one
email, not one per sensor tick. Delivery reads the rows back, so nothing raised is lost when
the mail server is down: the row stays `failed` with its attempt count and last error, and the
next `deliver_pending` sends it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg

from fulfillment.ops_schema import ensure_ops_tables
from quality.alert_rules import AlertConfig, load_alert_config

if TYPE_CHECKING:
    from quality.mailer import Mailer


@dataclass(frozen=True)
class Chart:
    """A small line chart, rendered to an inline PNG (matplotlib) when mailed."""

    title: str
    x: list[str]
    series: dict[str, list[float]]  # None in a list: no value that day (a gap)
    threshold: float | None = None
    y_label: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file mailed with the alert (e.g. the monthly reconciliation CSV)."""

    filename: str
    content: str
    mime_type: str = "text/csv"


@dataclass(frozen=True)
class Alert:
    rule: str  # a key of AlertConfig.rules
    subject: str
    facts: dict[str, Any]  # JSON-able; no clear PII (mask phones/names/addresses)
    dedup_key: str  # e.g. "channel=pdd" or "region=广东省"
    severity: str | None = None  # default: the rule's
    chart: Chart | None = None
    table: list[dict[str, Any]] | None = None  # a small diff/detail table for the body
    attachments: tuple[Attachment, ...] = ()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _finite(value: Any) -> Any:
    # JSON has no NaN: a detector's pandas NaN becomes null instead of failing the insert
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    # a round trip through JSON first turns dataclasses, numpy and Decimal into plain values
    plain = json.loads(json.dumps(value, default=_json_default))
    return json.dumps(_finite(plain), ensure_ascii=False, allow_nan=False)


def _table_payload(table: list[dict[str, Any]] | None) -> dict[str, list] | None:
    """A detail table as columns + rows: jsonb does not keep key order, the email must."""
    if not table:
        return None
    columns = list(dict.fromkeys(k for row in table for k in row))
    return {"columns": columns, "rows": [[row.get(c) for c in columns] for row in table]}


def _table_rows(detail: Any) -> list[dict[str, Any]] | None:
    if isinstance(detail, dict):
        return [dict(zip(detail["columns"], row, strict=True)) for row in detail["rows"]]
    return detail  # already a list of rows (written by other code)


def ensure_alerts_table(conn: psycopg.Connection) -> None:
    """ops.alerts with its columns, and the index the cool-down test and the circuit
    breaker's dedup lookup read (created only when missing: CREATE INDEX locks the table)."""
    ensure_ops_tables(conn)
    with conn.transaction():
        exists = conn.execute(
            "select 1 from pg_indexes where schemaname = 'ops' and indexname = 'alerts_dedup'"
        ).fetchone()
        if not exists:
            conn.execute(
                "create index if not exists alerts_dedup "
                "on ops.alerts (dedup_key, rule, created_at)"
            )


def utc_now(now: datetime | None = None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


# One statement: the batch arrives as one JSON array; the first alert of each (rule, key) in
# the batch wins, and any key with a row inside its rule's cool-down is skipped.
_RAISE = """
with incoming as (
    select x.ord, x.rule, x.severity, x.subject, x.facts, x.recipients, x.dedup_key,
           x.cooldown_minutes, x.robot, x.chart, x.detail, x.attachments
    from jsonb_to_recordset(%(batch)s::jsonb) as x(
        ord int, rule text, severity text, subject text, facts jsonb, recipients jsonb,
        dedup_key text, cooldown_minutes int, robot boolean, chart jsonb, detail jsonb,
        attachments jsonb)
),

first_of_key as (
    select distinct on (rule, dedup_key) *
    from incoming
    order by rule, dedup_key, ord
),

outside_cooldown as (
    select f.*
    from first_of_key f
    where not exists (
        select 1
        from ops.alerts a
        where a.rule = f.rule
            and a.dedup_key = f.dedup_key
            and a.created_at > %(now)s - make_interval(mins => f.cooldown_minutes)
    )
)

insert into ops.alerts (rule, severity, subject, facts, recipients, created_at, sent_at,
                        delivery, dedup_key, chart, detail, attachments, attempts,
                        robot_delivery)
select rule, severity, subject, facts,
       array(select jsonb_array_elements_text(recipients)), %(now)s, null,
       'pending', dedup_key, chart, detail, attachments, 0,
       case when robot then 'pending' end
from outside_cooldown
order by ord
returning id
"""


def raise_alerts(
    conn: psycopg.Connection,
    alerts: Iterable[Alert],
    config: AlertConfig | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Record `alerts` in `ops.alerts` (delivery 'pending') in one transaction, skipping any
    whose (rule, dedup_key) has a row created within the rule's cool-down; the ids written."""
    config = config or load_alert_config()
    now = utc_now(now)
    batch = []
    for i, alert in enumerate(alerts):
        rule = config.rule(alert.rule)
        batch.append(
            {
                "ord": i,
                "rule": alert.rule,
                "severity": alert.severity or rule.severity,
                "subject": alert.subject,
                "facts": alert.facts,
                "recipients": config.recipients_of(alert.rule),
                "dedup_key": alert.dedup_key,
                "cooldown_minutes": rule.cooldown_minutes,
                "robot": rule.robot,
                "chart": alert.chart,
                "detail": _table_payload(alert.table),
                "attachments": list(alert.attachments) or None,
            }
        )
    if not batch:
        return []
    ensure_alerts_table(conn)
    with conn.transaction():
        # two sensors raising the same key at once must not both pass the cool-down test
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.alerts'))")
        rows = conn.execute(_RAISE, {"batch": _dumps(batch), "now": now}).fetchall()
    return [r[0] for r in rows]


@dataclass
class DeliveryReport:
    """What one `deliver_pending` call did."""

    sent: int = 0  # over SMTP
    outbox: int = 0  # written as .eml (no SMTP configured)
    failed: int = 0  # kept for the next call
    robot_sent: int = 0
    robot_failed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    smtp_down: str | None = None  # set once the mail server failed every retry this round

    @property
    def delivered(self) -> int:
        return self.sent + self.outbox


# Rows locked for this call only: a sensor tick and a CLI call never mail the same alert twice.
_PENDING = """
select id, rule, severity, subject, coalesce(facts, '{}'::jsonb), coalesce(recipients, '{}'),
       created_at, dedup_key, chart, detail, attachments,
       coalesce(delivery, 'pending') in ('pending', 'failed') as needs_email,
       robot_delivery
from ops.alerts
where coalesce(delivery, 'pending') in ('pending', 'failed')
    or robot_delivery in ('pending', 'failed')
order by id
limit %(limit)s
for update skip locked
"""

_RECORD = """
update ops.alerts a
set delivery = coalesce(r.delivery, a.delivery),
    sent_at = coalesce(r.sent_at, a.sent_at),
    attempts = a.attempts + r.attempts,
    last_error = r.last_error,
    robot_delivery = coalesce(r.robot_delivery, a.robot_delivery),
    robot_sent_at = coalesce(r.robot_sent_at, a.robot_sent_at)
from jsonb_to_recordset(%(outcomes)s::jsonb) as r(
    id bigint, delivery text, sent_at timestamptz, attempts int, last_error text,
    robot_delivery text, robot_sent_at timestamptz)
where a.id = r.id
"""


def deliver_pending(
    conn: psycopg.Connection,
    config: AlertConfig | None = None,
    mailer: Mailer | None = None,
    now: datetime | None = None,
    limit: int = 200,
) -> DeliveryReport:
    """Send every alert whose delivery is pending or failed (one email per alert to its
    owner's recipients; urgent ones also to the group robot) and record `delivery`
    ('sent' | 'outbox' | 'failed'), `sent_at`, the attempts and the last error."""
    from quality.mailer import Mailer

    config = config or load_alert_config()
    mailer = mailer or Mailer()
    now = utc_now(now)
    report = DeliveryReport()
    ensure_alerts_table(conn)
    try:
        with conn.transaction():
            rows = conn.execute(_PENDING, {"limit": limit}).fetchall()
            robot = _robot_target(mailer)
            outcomes = [_deliver_row(row, config, mailer, robot, now, report) for row in rows]
            if outcomes:
                conn.execute(_RECORD, {"outcomes": _dumps(outcomes)})
    finally:
        mailer.close()  # the round's one SMTP session
    return report


def _deliver_row(
    row: tuple,
    config: AlertConfig,
    mailer: Mailer,
    robot: tuple[str, str] | None,
    now: datetime,
    report: DeliveryReport,
) -> dict[str, Any]:
    """Mail one `_PENDING` row (and post it to the robot when urgent); its outcome."""
    from quality.mailer import DeliveryFailed, StoredAlert, build_message

    (id_, rule, severity, subject, facts, recipients, created_at, dedup_key,
     chart, detail, attachments, needs_email, robot_delivery) = row  # fmt: skip
    # rows written straight into ops.alerts (the circuit breaker's) have no robot state:
    # their rule's `robot` decides on first delivery
    urgent = rule in config.rules and config.rules[rule].robot
    needs_robot = robot_delivery in ("pending", "failed") or (
        robot_delivery is None and needs_email and urgent
    )
    out: dict[str, Any] = {"id": id_, "attempts": 0}
    errors = []
    if needs_email:
        to = list(recipients) or _owner_recipients(config, rule)
        alert = StoredAlert(
            id_, rule, severity, subject, facts, to, created_at, dedup_key, chart,
            _table_rows(detail), attachments,
        )  # fmt: skip
        try:
            if not to:
                raise DeliveryFailed(f"rule {rule!r} has no recipients in alerts.yaml", 0)
            if report.smtp_down:
                raise DeliveryFailed(f"not tried: {report.smtp_down}", 0)
            stamp = created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            result = mailer.send(build_message(alert, mailer.sender), f"{stamp}-{id_:06d}-{rule}")
            out.update(delivery=result.delivery, sent_at=now, attempts=result.attempts)
            report.sent += result.delivery == "sent"
            report.outbox += result.delivery == "outbox"
        except DeliveryFailed as err:
            # the server found down fails the rest of the round fast instead of retrying each
            if err.server_down:
                report.smtp_down = report.smtp_down or str(err)
            out.update(delivery="failed", attempts=err.attempts)
            errors.append(str(err))
            report.failed += 1
        except Exception as err:  # a message that cannot be built must not block the others
            out.update(delivery="failed", attempts=1)
            errors.append(f"{type(err).__name__}: {err}"[:500])
            report.failed += 1
    if needs_robot:
        robot_error = _post_robot(robot, severity, subject, facts, mailer.clock())
        if robot_error is None:
            out.update(robot_delivery="sent", robot_sent_at=now)
            report.robot_sent += 1
        elif robot is None:
            out.update(robot_delivery="not_configured")
        else:
            out.update(robot_delivery="failed")
            errors.append(robot_error)
            report.robot_failed += 1
    out["last_error"] = "; ".join(errors) or None
    report.errors += errors
    return out


def _owner_recipients(config: AlertConfig, rule: str) -> list[str]:
    # rows written straight into ops.alerts by other code (routing's circuit breaker) carry
    # no recipients: the rule's owner gets them
    return config.recipients_of(rule) if rule in config.rules else []


def _robot_target(mailer: Mailer) -> tuple[str, str] | None:
    """(webhook URL, secret) from the env, else the sandbox's robot in sandbox.json."""
    s = mailer.settings
    if s.robot_webhook_url:
        return s.robot_webhook_url, s.robot_secret.get_secret_value() if s.robot_secret else ""
    try:
        robot = json.loads(s.sandbox_file.read_text(encoding="utf-8")).get("robot") or {}
    except (OSError, ValueError):
        return None
    return (robot["webhook_url"], robot.get("secret", "")) if robot.get("webhook_url") else None


def _post_robot(
    robot: tuple[str, str] | None, severity: str, subject: str, facts: dict, sent_at: datetime
) -> str | None:
    """None when posted (or nowhere to post); else the error text."""
    if robot is None:
        return "no robot webhook configured"
    from quality.robot import RobotError, post_markdown

    lines = [f"#### [{severity}] {subject}", ""]
    lines += [f"- {k}: {v}" for k, v in list(facts.items())[:12]]
    try:
        post_markdown(robot[0], robot[1], subject, "\n".join(lines), sent_at)
    except RobotError as err:
        return str(err)
    return None
