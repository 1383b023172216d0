"""The scheduled report emails, built as alerts so they share recording, cool-down and
delivery: the daily health digest (OHI per channel with a 7-day chart) and the monthly
per-platform reconciliation for finance (a CSV attachment).

Both read marts built by dbt; a mart that does not exist yet means no report (None), not an
error, so a fresh warehouse does not fail the schedule.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from quality.alert_rules import AlertConfig, load_alert_config
from quality.alerts import Alert, Attachment, Chart
from quality.mailer import to_csv

SUB_SCORES = ("timeliness", "completeness", "consistency", "accuracy", "controllability")

_HEALTH = """
select day, channel, ohi::float8, {scores}
from marts.order_health_daily
where day > %(day)s::date - %(days)s and day <= %(day)s
order by channel, day
"""

_RECONCILIATION = """
select channel, month, orders, goods_value, platform_coupons, shop_coupons, discount_amount,
       freight, paid_amount, refund_amount, refunded_orders, net_amount, reconciliation_gap
from marts.fct_platform_reconciliation_monthly
where month = %(month)s
order by channel
"""

RECONCILIATION_COLUMNS = (
    "channel", "month", "orders", "goods_value", "platform_coupons", "shop_coupons",
    "discount_amount", "freight", "paid_amount", "refund_amount", "refunded_orders",
    "net_amount", "reconciliation_gap",
)  # fmt: skip


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", [relation]).fetchone()[0]


def _num(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def health_digest(
    conn: psycopg.Connection, day: date, config: AlertConfig | None = None, days: int = 7
) -> Alert | None:
    """The OHI of every channel on `day` with its sub-scores, and a `days`-day trend chart."""
    config = config or load_alert_config()
    if not _exists(conn, "marts.order_health_daily"):
        return None
    scores = ", ".join(f"{s}::float8" for s in SUB_SCORES)
    rows = conn.execute(_HEALTH.format(scores=scores), {"day": day, "days": days}).fetchall()
    if not rows:
        return None
    x = [(day - timedelta(days=i)).isoformat() for i in reversed(range(days))]
    by_channel: dict[str, dict[str, float | None]] = {}
    today: list[dict[str, Any]] = []
    for row in rows:
        by_channel.setdefault(row[1], {})[row[0].isoformat()] = row[2]
        if row[0] == day:
            today.append(
                {"channel": row[1], "ohi": row[2], **dict(zip(SUB_SCORES, row[3:], strict=True))}
            )
    threshold = float(config.rule("health_index").params.get("ohi_threshold", 80))
    below = sorted(r["channel"] for r in today if r["ohi"] is not None and r["ohi"] < threshold)
    ohis = [r["ohi"] for r in today if r["ohi"] is not None]
    return Alert(
        rule="daily_health_digest",
        subject=f"Order health {day.isoformat()}: "
        + (f"{len(below)} channel(s) under {threshold:g}" if below else "all channels healthy"),
        facts={
            "day": day.isoformat(),
            "channels": len(today),
            "lowest_ohi": min(ohis) if ohis else None,
            "below_threshold": below,
            **{f"ohi_{r['channel']}": r["ohi"] for r in today},
        },
        dedup_key=f"day={day.isoformat()}",
        chart=Chart(
            title=f"Order Health Index, last {days} days",
            x=x,
            # a day without a score is drawn as a gap, not a zero
            series={c: [v.get(d) for d in x] for c, v in by_channel.items()},
            threshold=threshold,
            y_label="OHI",
        ),
        table=today,
    )


def monthly_reconciliation(
    conn: psycopg.Connection, day: date, config: AlertConfig | None = None
) -> Alert | None:
    """The previous month's per-platform reconciliation for finance, as a CSV attachment."""
    if not _exists(conn, "marts.fct_platform_reconciliation_monthly"):
        return None
    month = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    cur = conn.execute(_RECONCILIATION, {"month": month})
    names = [c.name for c in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    if not rows:
        return None
    label = month.strftime("%Y-%m")
    gaps = [
        r["channel"]
        for r in rows
        if r["reconciliation_gap"] and abs(r["reconciliation_gap"]) >= Decimal("0.01")
    ]
    return Alert(
        rule="monthly_reconciliation",
        subject=f"Platform reconciliation {label}: {len(rows)} platform(s)"
        + (f", gaps on {', '.join(gaps)}" if gaps else ", no gaps"),
        facts={
            "month": label,
            "platforms": len(rows),
            "orders": sum(r["orders"] for r in rows),
            "paid_amount": _num(sum(r["paid_amount"] or 0 for r in rows)),
            "refund_amount": _num(sum(r["refund_amount"] or 0 for r in rows)),
            "platforms_with_gap": gaps,
        },
        dedup_key=f"month={label}",
        table=[
            {
                c: _num(r[c])
                for c in ("channel", "orders", "paid_amount", "refund_amount", "net_amount")
            }
            for r in rows
        ],
        attachments=(
            Attachment(
                f"platform_reconciliation_{label}.csv",
                to_csv(rows, RECONCILIATION_COLUMNS),
            ),
        ),
    )
