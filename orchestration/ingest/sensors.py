"""Push: turn new raw.webhook_events into runs that fetch just the affected orders."""

import dagster as dg
import psycopg

from connectors.channels_config import load_channels
from orchestration.ingest.assets import load_run_selection, orders_asset_key
from orchestration.resources import ChannelsResource, WarehouseResource

MAX_EVENTS_PER_TICK = 500
# Up to this many orders are loaded by the sensor itself (warm code server, ~0.1 s);
# more, or a failure, become a run (a run pays ~5-30 s of process start on a busy host).
FAST_PATH_MAX_ORDERS = 200
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def push_job(channel: str):
    """One step, in process: a push run must not pay for a second subprocess."""
    return dg.define_asset_job(
        name=f"{channel}_push_ingest",
        selection=load_run_selection(channel),
        executor_def=dg.in_process_executor,
        tags={"trigger": "push", "channel": channel, "dagster/priority": "10"},
        description=f"Fetch the {channel} orders named in push messages.",
    )


def build_push_sensor(channel: str, job) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{channel}_push_sensor",
        job=job,
        minimum_interval_seconds=1,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Starts a run for the {channel} orders named in new push messages "
            "(raw.webhook_events), so a paid order is in raw within seconds. While one push "
            "run is in flight the next messages wait and go together into the following run."
        ),
    )
    def _sensor(
        context: dg.SensorEvaluationContext,
        warehouse: WarehouseResource,
        channels: ChannelsResource,
    ):
        from connectors.push_load import pending_events

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
        # Only when there is something to load: the in-flight runs are a query of Dagster's
        # run storage, and these six sensors tick every second, mostly with nothing to do.
        in_flight = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1
        )
        if in_flight:
            return dg.SkipReason("a push run is in flight; new messages go into the next one")
        order_nos = sorted({no for e in events for no in e.order_nos})
        ids = [e.id for e in events]
        context.update_cursor(str(max(ids)))
        if len(order_nos) <= FAST_PATH_MAX_ORDERS:
            try:
                return _load_in_sensor(context, warehouse, channels, channel, order_nos, ids)
            except Exception as exc:  # the run below retries with backoff and records it
                context.log.warning(f"{channel}: push fast path failed ({exc}); requesting a run")
        return dg.RunRequest(
            run_key=f"{channel}-push-{max(ids)}",
            run_config={
                "ops": {
                    orders_asset_key(channel).to_python_identifier(): {
                        "config": {"order_nos": order_nos, "webhook_event_ids": ids}
                    }
                }
            },
        )

    return _sensor


def _load_in_sensor(context, warehouse, channels, channel, order_nos, ids) -> dg.SensorResult:
    """Fetch and load the pushed orders right here, then record the materialisation so the
    downstream automation reacts as it would to a run."""
    from connectors.push_load import load_pushed_orders

    cfg = load_channels().channels[channel]
    with channels.open_client(channel, cfg) as client, warehouse.connect() as conn:
        report = load_pushed_orders(
            conn, client, channel, order_nos, ids, run_id=f"sensor:{channel}_push_sensor"
        )
    return dg.SensorResult(
        asset_events=[
            dg.AssetMaterialization(
                asset_key=orders_asset_key(channel),
                description=f"{len(order_nos)} pushed orders loaded by {channel}_push_sensor",
                metadata={"trigger": "push", "webhook_events": len(ids), **report.stats.as_dict()},
            )
        ]
    )


def push_jobs_and_sensors() -> tuple[list, list[dg.SensorDefinition]]:
    jobs = {c: push_job(c) for c in load_channels().of_kind("marketplace")}
    return list(jobs.values()), [build_push_sensor(c, j) for c, j in jobs.items()]
