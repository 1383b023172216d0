"""The business watches: each alert rule with its detector, how often its sensor looks, and
one call that runs a watch and records what it finds (`raise_alerts`).

Plain library: the Dagster sensors (orchestration/quality/sensors.py) wrap `run_watch`, and a
demo or a script can run every watch once with `run_watches`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from quality import (
    cs_escalation,
    delivery_timeouts,
    health_watch,
    order_pulse,
    oversold_skus,
    pause_sale_watch,
    price_difference,
    return_interception,
    stock_mismatch,
    stuck_orders,
)
from quality.alert_rules import AlertConfig, load_alert_config
from quality.alerts import raise_alerts

# rows land minutes to an hour after they happen: a scan since the last look starts this much
# earlier (a finding seen twice is silenced by the rule's cool-down)
LATE_DATA = timedelta(hours=1)


@dataclass(frozen=True)
class Watch:
    rule: str  # the rule in config/alerts.yaml
    detect: Callable[..., list]
    interval_seconds: int  # how often its sensor looks
    scans_since: bool  # the detector takes `since` (the last look)
    what: str

    @property
    def sensor_name(self) -> str:
        return f"{self.rule}_sensor"


WATCHES = (
    Watch("order_pulse", order_pulse.detect, 120, True,
          "a channel silent past its quiet time while the others flow"),
    Watch("stuck_orders", stuck_orders.detect, 300, False,
          "a wave of orders stuck over 24 h in one status; red flags in ops.stuck_orders"),
    Watch("delivery_timeout", delivery_timeouts.detect, 300, True,
          "a region's delivery timeout rate above 15 % three days running"),
    Watch("price_difference", price_difference.detect, 300, False,
          "a SKU priced more than 0.8 % apart across channels"),
    Watch("return_interception", return_interception.detect, 300, False,
          "return interceptions succeeding under 90 % on a channel"),
    Watch("cs_escalation", cs_escalation.detect, 120, True,
          "an order asked about 3+ times or with complaint words twice"),
    Watch("inventory_oversold", oversold_skus.detect, 120, False,
          "oversold SKUs (paid lines no stock covers)"),
    Watch("stock_mismatch", stock_mismatch.detect, 600, False,
          "a platform's displayed stock more than 3 units off the WMS (hourly reconciliation)"),
    Watch("stock_below_safety", pause_sale_watch.detect, 120, True,
          "SKUs newly paused for stock under the safety threshold"),
    Watch("health_index", health_watch.detect, 300, False,
          "a channel's Order Health Index under its threshold"),
)  # fmt: skip


@dataclass(frozen=True)
class WatchResult:
    rule: str
    found: int  # alerts the detector returned
    raised: int  # of them, written to ops.alerts (the rest within their cool-down)
    ids: tuple[int, ...]


def run_watch(
    watch: Watch,
    conn: psycopg.Connection,
    now: datetime,
    last_look: datetime | None = None,
    config: AlertConfig | None = None,
) -> WatchResult:
    """Detect (since `last_look` less LATE_DATA for the watches that scan history) and record
    the alerts; a detector's own writes (stuck orders' red flags) are committed first."""
    config = config or load_alert_config()
    params = config.rules[watch.rule].params
    if watch.scans_since:
        since = last_look - LATE_DATA if last_look else None
        alerts = watch.detect(conn, params, now, since=since)
    else:
        alerts = watch.detect(conn, params, now)
    conn.commit()
    ids = raise_alerts(conn, alerts, config, now)
    return WatchResult(watch.rule, len(alerts), len(ids), tuple(ids))


def run_watches(
    conn: psycopg.Connection,
    now: datetime,
    last_look: datetime | None = None,
    config: AlertConfig | None = None,
) -> list[WatchResult]:
    """Every watch once (a demo's or a script's sweep); a watch whose tables are not built
    yet is left out."""
    config = config or load_alert_config()
    results = []
    for watch in WATCHES:
        try:
            results.append(run_watch(watch, conn, now, last_look, config))
        except psycopg.errors.UndefinedTable:
            conn.rollback()
    return results
