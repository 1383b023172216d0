"""The business sensors: one per detector in `quality/`, each calling the detector on the
warehouse and recording what it finds with `raise_alerts` (ops.alerts, delivery 'pending';
the rule's cool-down keeps one incident to one alert).

Each keeps a cursor, `{"evaluated_at": ...}`: the detectors that scan history (order pulse, CS
tickets, delivery timeouts, new pause-sale SKUs) look only at what happened after the last
evaluation less `LATE_DATA` (rows land minutes to an hour after they happen; a finding seen
twice is silenced by the cool-down). The others read current state, which is small. A table
not built yet (a fresh warehouse) is a skip, not a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from orchestration.resources import WarehouseResource
from quality import (
    cs_escalation,
    delivery_timeouts,
    health_watch,
    order_pulse,
    oversold_skus,
    pause_sale_watch,
    price_difference,
    return_interception,
    stuck_orders,
)

LATE_DATA = timedelta(hours=1)


@dataclass(frozen=True)
class Watch:
    rule: str  # the rule in config/alerts.yaml
    detect: Callable[..., list]
    interval_seconds: int
    scans_since: bool  # the detector takes `since` (the cursor)
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
    Watch("stock_below_safety", pause_sale_watch.detect, 120, True,
          "SKUs newly paused for stock under the safety threshold"),
    Watch("health_index", health_watch.detect, 300, False,
          "a channel's Order Health Index under its threshold"),
)  # fmt: skip


def run_watch(
    watch: Watch, conn: psycopg.Connection, now: datetime, cursor: str | None
) -> tuple[int, int, str]:
    """Detect and raise: (alerts found, alerts raised, the new cursor). Plain function: the
    sensor below and tests call it alike."""
    from quality.alert_rules import load_alert_config
    from quality.alerts import raise_alerts

    config = load_alert_config()
    params = config.rules[watch.rule].params
    last = json.loads(cursor)["evaluated_at"] if cursor else None
    if watch.scans_since:
        since = datetime.fromisoformat(last) - LATE_DATA if last else None
        alerts = watch.detect(conn, params, now, since=since)
    else:
        alerts = watch.detect(conn, params, now)
    conn.commit()  # a detector that writes (stuck orders' red flags) keeps its rows
    ids = raise_alerts(conn, alerts, config, now)
    return len(alerts), len(ids), json.dumps({"evaluated_at": now.isoformat()})


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_watch_sensor(
    watch: Watch, clock: Callable[[], datetime] = utc_now
) -> dg.SensorDefinition:
    """The sensor of `watch`; `clock` is the time it evaluates at (tests pin it)."""

    @dg.sensor(
        name=watch.sensor_name,
        minimum_interval_seconds=watch.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Alerts ({watch.rule}, config/alerts.yaml) on {watch.what}; records them in "
            "ops.alerts for the mailer."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        now = clock()
        try:
            with warehouse.connect() as conn:
                found, raised, cursor = run_watch(watch, conn, now, context.cursor)
        except psycopg.errors.UndefinedTable as exc:
            # a fresh warehouse: the marts this watch reads are not built yet
            return dg.SkipReason(f"nothing to watch yet: {str(exc).splitlines()[0]}")
        context.update_cursor(cursor)
        if not found:
            return dg.SkipReason(f"{watch.rule}: nothing found")
        return dg.SkipReason(
            f"{watch.rule}: {found} found, {raised} raised "
            f"({found - raised} within their cool-down)"
        )

    return _sensor


def quality_sensors() -> list[dg.SensorDefinition]:
    return [build_watch_sensor(watch) for watch in WATCHES]
