"""The quality domain: data checks on the assets (Great Expectations suites), the business
sensors that raise alerts, and the alert delivery."""

from __future__ import annotations

import dagster as dg

from connectors.channels_config import load_channels
from orchestration.conventions import SCHEDULE_TIMEZONE, SCHEDULED_PULL_TAGS
from orchestration.ingest.assets import VOLUME_CHECK, orders_asset_key
from orchestration.quality.alerting import alerting_definitions
from orchestration.quality.expectation_checks import expectation_checks
from orchestration.quality.sensors import quality_sensors

raw_volume_checks_job = dg.define_asset_job(
    name="raw_volume_checks",
    selection=dg.AssetSelection.checks(
        *(
            dg.AssetCheckKey(orders_asset_key(channel), VOLUME_CHECK)
            for channel in load_channels().channels
        )
    ),
    description=(
        "Every channel's raw orders table against its volume check: row count within the "
        "bounds of the previous check's, newest row younger than the channel's quiet time. "
        "Checks only; one Great Expectations import for all channels."
    ),
)

raw_volume_checks_schedule = dg.ScheduleDefinition(
    name="raw_volume_checks_schedule",
    job=raw_volume_checks_job,
    # hourly, off the pulls' minutes (every 10 min from :00)
    cron_schedule="7 * * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags=SCHEDULED_PULL_TAGS,
    description="Hourly volume and freshness checks of the raw orders tables.",
)

defs = dg.Definitions(
    asset_checks=expectation_checks(),
    jobs=[raw_volume_checks_job],
    schedules=[raw_volume_checks_schedule],
    sensors=quality_sensors(),
)
# alert delivery, run/check failure alerts and the scheduled report emails
defs = dg.Definitions.merge(defs, alerting_definitions())
