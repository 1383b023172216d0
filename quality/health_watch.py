"""Order Health Index watch (rule `health_index`): a channel whose OHI on its latest day (in the
last `lookback_days` Beijing days up to `now`) is under `ohi_threshold` (80).

Reads `marts.order_health_daily` (day, channel, ohi and the five sub-scores, the dbt model
dbt_project/models/marts/order_health_daily.sql); while it does not exist there is nothing to check.
The alert names the weakest sub-scores and carries a `chart_days` chart of the channel's OHI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row
from pydantic import Field

from quality.alerts import Alert, Chart
from quality.detector_params import DetectorParams, parse_params

RULE = "health_index"
BEIJING = ZoneInfo("Asia/Shanghai")
# the sub-score columns of marts.order_health_daily
SUB_SCORES = ("timeliness", "completeness", "consistency", "accuracy", "controllability")


class HealthIndexParams(DetectorParams):
    ohi_threshold: float = Field(default=80, gt=0, le=100)
    lookback_days: int = Field(default=2, ge=1)
    chart_days: int = Field(default=7, ge=1)


_DAYS = """
select *
from marts.order_health_daily
where day between %(first)s and %(today)s
order by channel, day
"""


def detect(conn: psycopg.Connection, params: object, now: datetime) -> list[Alert]:
    """One alert per channel whose latest OHI is under the threshold."""
    p = parse_params(RULE, params, HealthIndexParams)
    if conn.execute("select to_regclass('marts.order_health_daily')").fetchone()[0] is None:
        return []
    today = now.astimezone(BEIJING).date()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _DAYS, {"first": today - timedelta(days=p.chart_days - 1), "today": today}
        ).fetchall()
    by_channel: dict[str, list[dict]] = {}
    for row in rows:
        by_channel.setdefault(row["channel"], []).append(row)
    recent = today - timedelta(days=p.lookback_days - 1)
    alerts = []
    for channel, days in by_channel.items():
        latest = days[-1]
        ohi = latest["ohi"]
        if latest["day"] >= recent and ohi is not None and float(ohi) < p.ohi_threshold:
            alerts.append(_alert(channel, days, p))
    return alerts


def _alert(channel: str, days: list[dict], p: HealthIndexParams) -> Alert:
    latest = days[-1]
    subs = {
        k: round(float(v), 1)
        for k, v in latest.items()
        if k in SUB_SCORES and isinstance(v, int | float | Decimal)
    }
    weakest = sorted(subs, key=subs.get)[:2]
    return Alert(
        rule=RULE,
        subject=(
            f"{channel}: Order Health Index {float(latest['ohi']):.1f} on {latest['day']} "
            f"(under {p.ohi_threshold:g}; weakest: {', '.join(weakest) or 'n/a'})"
        ),
        facts={
            "channel": channel,
            "day": latest["day"].isoformat(),
            "ohi": round(float(latest["ohi"]), 1),
            "sub_scores": subs,
            "threshold": p.ohi_threshold,
        },
        dedup_key=f"channel={channel}",
        chart=Chart(
            title=f"{channel} Order Health Index",
            x=[d["day"].isoformat() for d in days],
            series={"OHI": [float(d["ohi"] or 0) for d in days]},
            threshold=p.ohi_threshold,
            y_label="OHI (0-100)",
        ),
    )
