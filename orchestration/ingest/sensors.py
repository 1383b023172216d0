"""Push: turn new raw.webhook_events into runs that fetch just the affected orders."""

import dagster as dg
import psycopg

from connectors.channels_config import load_channels
from orchestration.ingest.assets import orders_asset_key
from orchestration.resources import WarehouseResource

MAX_EVENTS_PER_TICK = 500


def build_push_sensor(channel: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{channel}_push_sensor",
        target=dg.AssetSelection.assets(orders_asset_key(channel)),
        minimum_interval_seconds=2,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Starts a run for the {channel} orders named in new push messages "
            "(raw.webhook_events), so a paid order is in raw within seconds."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        from connectors.webhook import pending_events

        last_id = int(context.cursor or 0)
        try:
            with warehouse.connect() as conn:
                events = [
                    e
                    for e in pending_events(conn, limit=MAX_EVENTS_PER_TICK, channel=channel)
                    if e.id > last_id
                ]
        except psycopg.errors.UndefinedTable:
            return dg.SkipReason("no webhook events table yet (no push received)")
        if not events:
            return dg.SkipReason("no new push messages")
        order_nos = sorted({no for e in events for no in e.order_nos})
        ids = [e.id for e in events]
        context.update_cursor(str(max(ids)))
        return dg.RunRequest(
            run_key=f"{channel}-push-{max(ids)}",
            run_config={
                "ops": {
                    orders_asset_key(channel).to_python_identifier(): {
                        "config": {"order_nos": order_nos, "webhook_event_ids": ids}
                    }
                }
            },
            tags={"trigger": "push", "channel": channel},
        )

    return _sensor


def push_sensors() -> list[dg.SensorDefinition]:
    return [build_push_sensor(c) for c in load_channels().of_kind("marketplace")]
