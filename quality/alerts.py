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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg

from fulfillment.ops_schema import ensure_ops_tables
from quality.alert_rules import AlertConfig, load_alert_config

if TYPE_CHECKING:
    from quality.mailer import DeliveryReport, Mailer


@dataclass(frozen=True)
class Chart:
    """A small line chart, rendered to an inline PNG (matplotlib) when mailed."""

    title: str
    x: list[str]
    series: dict[str, list[float]]
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


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=_json_default, ensure_ascii=False)


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
                "detail": alert.table,
                "attachments": list(alert.attachments) or None,
            }
        )
    if not batch:
        return []
    ensure_ops_tables(conn)
    with conn.transaction():
        # two sensors raising the same key at once must not both pass the cool-down test
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.alerts'))")
        rows = conn.execute(_RAISE, {"batch": _dumps(batch), "now": now}).fetchall()
    return [r[0] for r in rows]


def deliver_pending(
    conn: psycopg.Connection,
    config: AlertConfig | None = None,
    mailer: Mailer | None = None,
    now: datetime | None = None,
) -> DeliveryReport:
    """Send every alert whose delivery is pending or failed (one email per alert to its
    owner's recipients; urgent ones also to the group robot) and record how it went."""
    from quality.delivery import deliver

    return deliver(conn, config or load_alert_config(), mailer, utc_now(now))
