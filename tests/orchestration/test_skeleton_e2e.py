"""The walking skeleton: sandbox gateways over real HTTP -> ingestion assets -> raw ->
dbt staging -> marts.fct_orders -> the per-channel summary asset, on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster_dbt import DbtCliResource

pytestmark = pytest.mark.slow


def test_full_graph_lands_every_marketplace_order_once(fresh_db, tmp_path: Path) -> None:
    from orchestration.dbt.assets import orderpulse_dbt_models
    from orchestration.dbt.project import dbt_project
    from orchestration.ingest.assets import marketplace_assets
    from orchestration.reporting.assets import channel_order_summary
    from orchestration.resources import ChannelsResource, WarehouseResource, dbt_executable
    from sandbox.model import MARKETPLACES
    from sandbox.server import Sandbox

    home = tmp_path / "home"
    home.mkdir()
    with Sandbox(home, seed=5, orders=400, days=2) as sandbox:
        result = dg.materialize(
            [*marketplace_assets(), orderpulse_dbt_models, channel_order_summary],
            instance=dg.DagsterInstance.ephemeral(),
            resources={
                "warehouse": WarehouseResource(pg_url=fresh_db.url()),
                "channels": ChannelsResource(home=str(home)),
                "dbt": DbtCliResource(
                    project_dir=dbt_project,
                    profiles_dir=str(dbt_project.profiles_dir),
                    dbt_executable=dbt_executable(),
                ),
            },
            raise_on_error=False,
        )
        truth = sandbox.truth()
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    expected = {
        (o["channel"], o["platform_order_no"])
        for o in truth["orders"]
        if o["channel"] in MARKETPLACES
    }
    assert expected, "the sandbox published no marketplace orders"
    with psycopg.connect(fresh_db.url()) as conn:
        rows = conn.execute("select channel, platform_order_no from marts.fct_orders").fetchall()
    landed = [(c, n) for c, n in rows if c in MARKETPLACES]
    assert len(landed) == len(set(landed)), "an order appears twice in marts.fct_orders"
    assert set(landed) == expected

    summary = result.asset_materializations_for_node("reporting__channel_order_summary")
    assert summary and summary[0].metadata["orders"].value >= len(expected)
