"""The `ops/review_queue` asset (CS escalation holds) materialises against a real PostgreSQL
and reports its holds and examples (re-runs and releases: tests/fulfillment/test_cs_holds.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import psycopg

from orchestration.fulfillment.cs_holds import review_queue
from orchestration.resources import WarehouseResource
from tests.fulfillment.test_cs_holds import build_world


def test_the_asset_holds_the_escalated_buyers_orders_and_reports(fresh_db) -> None:  # noqa: ANN001
    # the asset decides at the wall clock's now: the world is built around it
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        build_world(conn, datetime.now(UTC))
    resources = {"warehouse": WarehouseResource(pg_url=fresh_db.url())}
    result = dg.materialize([review_queue], resources=resources)
    assert result.success
    [mat] = result.asset_materializations_for_node("ops__review_queue")
    meta = mat.metadata
    assert meta["dagster/row_count"].value == 2
    assert meta["held_this_run"].value == 2
    assert meta["open_escalations"].value == 1
    assert meta["pending_by_reason"].value == {"cs_escalation": 2}
    assert "taobao:E tickets" in meta["examples"].value
