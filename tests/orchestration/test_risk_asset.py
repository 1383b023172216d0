"""The `ops/risk_assessments` asset materialises against a real PostgreSQL, reports its counts
and examples, and sits between the two dbt ops in the asset graph."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from orchestration.fulfillment.risk import risk_assessments
from orchestration.resources import WarehouseResource
from tests.fulfillment.test_risk_store import _AWAITING, _EVENTS, _INT_ORDERS, _insert_order


def test_the_asset_assesses_queues_and_reports(fresh_db) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(_INT_ORDERS)
        conn.execute(_EVENTS)
        conn.execute(_AWAITING)
        _insert_order(conn, "1", 1, created_at=now - timedelta(hours=1))
        _insert_order(conn, "2", 2, country="US", created_at=now - timedelta(hours=1))
        conn.commit()
    resources = {"warehouse": WarehouseResource(pg_url=fresh_db.url())}
    result = dg.materialize([risk_assessments], resources=resources)
    assert result.success
    [mat] = result.asset_materializations_for_node("ops__risk_assessments")
    meta = mat.metadata
    assert meta["dagster/row_count"].value == 2
    assert meta["assessed_this_run"].value == 2
    assert meta["queued_this_run"].value == 1
    assert meta["signals_this_run"].value == {"customs_incomplete": 1}
    assert meta["review_queue"].value == {"pending": 1, "released": 0, "intercepted": 0}
    assert "customs_incomplete" in meta["examples"].value
    again = dg.materialize([risk_assessments], resources=resources)
    [mat] = again.asset_materializations_for_node("ops__risk_assessments")
    assert mat.metadata["assessed_this_run"].value == 0


def test_the_asset_sits_between_the_dbt_ops() -> None:
    from orchestration.definitions import defs

    graph = defs.get_repository_def().asset_graph
    key = dg.AssetKey(["ops", "risk_assessments"])
    node = graph.get(key)
    assert node.group_name == "fulfillment"
    parents = {k.to_user_string() for k in node.parent_keys}
    assert {"intermediate/int_orders_awaiting_allocation", "intermediate/int_orders"} <= parents
    children = {k.to_user_string() for k in node.child_keys}
    assert "staging/stg_ops__order_decisions" in children
