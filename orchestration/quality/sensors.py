"""The business sensors: one per watch in `quality/watches.py` (a detector and its alert
rule), each calling the detector on the warehouse and recording what it finds with
`raise_alerts` (ops.alerts, delivery 'pending'; the rule's cool-down keeps one incident to
one alert).

Each keeps a cursor, `{"evaluated_at": ...}`: the detectors that scan history (order pulse, CS
tickets, delivery timeouts, new pause-sale SKUs) look only at what happened after the last
evaluation less `LATE_DATA`; the others read current state, which is small. A table not
built yet (a fresh warehouse) is a skip, not a failure. On crafted marts of 1 M orders the
slowest watches took 4-5 s (order pulse, stuck orders) against intervals of 120-300 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import psycopg

from orchestration.resources import WarehouseResource
from quality.watches import WATCHES, Watch, run_watch

__all__ = ["WATCHES", "build_watch_sensor", "quality_sensors"]


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
        cursor = json.loads(context.cursor) if context.cursor else {}
        last_look = datetime.fromisoformat(cursor["evaluated_at"]) if cursor else None
        try:
            with warehouse.connect() as conn:
                result = run_watch(watch, conn, now, last_look)
        except psycopg.errors.UndefinedTable as exc:
            # a fresh warehouse: the marts this watch reads are not built yet
            return dg.SkipReason(f"nothing to watch yet: {str(exc).splitlines()[0]}")
        context.update_cursor(json.dumps({"evaluated_at": now.isoformat()}))
        if not result.found:
            return dg.SkipReason(f"{watch.rule}: nothing found")
        return dg.SkipReason(
            f"{watch.rule}: {result.found} found, {result.raised} raised "
            f"({result.found - result.raised} within their cool-down)"
        )

    return _sensor


def quality_sensors() -> list[dg.SensorDefinition]:
    return [build_watch_sensor(watch) for watch in WATCHES]
