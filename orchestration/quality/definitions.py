"""The quality domain: data checks on the assets (Great Expectations suites), the business
sensors that raise alerts, and the alert delivery."""

from __future__ import annotations

import dagster as dg

from orchestration.quality.alerting import alerting_definitions
from orchestration.quality.expectation_checks import expectation_checks
from orchestration.quality.sensors import quality_sensors

defs = dg.Definitions(asset_checks=expectation_checks(), sensors=quality_sensors())
# alert delivery, run/check failure alerts and the scheduled report emails
defs = dg.Definitions.merge(defs, alerting_definitions())
