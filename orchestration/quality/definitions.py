"""The quality domain: data checks on the assets (Great Expectations suites), the business
sensors that raise alerts, and the alert delivery."""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions()
