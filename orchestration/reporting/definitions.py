"""The reporting domain: summaries downstream of the marts."""

from __future__ import annotations

import dagster as dg

from orchestration.reporting.assets import channel_order_summary

defs = dg.Definitions(assets=[channel_order_summary])
