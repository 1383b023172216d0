"""What a materialisation shows in the Dagster UI: dbt models with row counts and column types,
the key marts with a preview of a few rows (masked columns only, money in yuan), the OHI trend,
and the reporting asset with money formatted and orders per hour per channel."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from orchestration.dbt.model_metadata import PREVIEW_COLUMNS, ModelRelation, model_metadata
from orchestration.previews import sparkline, yuan
from orchestration.resources import WarehouseResource

# the data clock of the hand-made marts: 2026-11-20 15:xx Beijing time
CLOCK = datetime(2026, 11, 20, 7, 40, tzinfo=UTC)
PII = {"receiver_name", "receiver_address", "buyer_note", "seller_note", "buyer_id"}
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

FCT_ORDERS = """
create table marts.fct_orders (
    channel text, platform_order_no text, shop_id text, unified_status text,
    goods_value numeric(14, 2), discount_amount numeric(14, 2), freight numeric(14, 2),
    paid_amount numeric(14, 2), receiver_name text, receiver_phone text,
    receiver_address text, buyer_note text, province text, city text,
    created_at timestamptz, paid_at timestamptz, _written_xid bigint
)
"""


def _fill_orders(conn: psycopg.Connection) -> None:
    """taobao: 3 orders in the newest hour, 1 five hours before, 1 outside the 24 h; jd: one
    order worth ¥1,016,900.00 two hours before the newest. Names and streets are clear here
    (as in raw): a preview must not show them."""
    conn.execute(FCT_ORDERS)
    rows = [
        ("taobao", "T1", CLOCK, Decimal("10.50"), 1),
        ("taobao", "T2", CLOCK - timedelta(minutes=20), Decimal("20.00"), 2),
        ("taobao", "T3", CLOCK - timedelta(minutes=35), Decimal("30.00"), 3),
        ("taobao", "T4", CLOCK - timedelta(hours=5), Decimal("40.00"), 4),
        ("taobao", "T5", CLOCK - timedelta(hours=30), Decimal("50.00"), 5),
        ("jd", "J1", CLOCK - timedelta(hours=2), Decimal("1016900.00"), 6),
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.fct_orders values (%s, %s, 'shop1', 'paid_pending_review', "
            "%s, 0, 0, %s, '张三', '138****5678', '人民路1号', '尽快', '浙江省', '杭州市', "
            "%s, %s, %s)",
            [(ch, no, paid, paid, at, at, xid) for ch, no, at, paid, xid in rows],
        )
    conn.commit()


def test_reporting_asset_shows_yuan_and_orders_per_hour(fresh_db) -> None:
    from orchestration.reporting.assets import channel_order_summary

    with psycopg.connect(fresh_db.url()) as conn:
        _fill_orders(conn)
    result = dg.materialize(
        [channel_order_summary], resources={"warehouse": WarehouseResource(pg_url=fresh_db.url())}
    )
    [mat] = result.asset_materializations_for_node("reporting__channel_order_summary")
    meta = mat.metadata
    assert meta["orders"].value == 6
    assert meta["paid_amount"].value == "¥1,017,050.50"
    preview = meta["preview"].value
    assert "¥1,016,900.00" in preview and "¥150.50" in preview
    assert "e+0" not in preview
    chart = meta["orders_per_hour"].value
    lines = {line.split("|")[1].strip(): line for line in chart.splitlines() if "|" in line}
    # 24 hourly bars ending at the newest order's hour; T5 (30 h before) is outside
    taobao = [c.strip() for c in lines["taobao"].split("|")]
    assert taobao[2] == "▁" * 18 + "▃" + "▁" * 4 + "█"  # 1 order at 10:00, 3 at 15:00
    assert taobao[3] == "4"
    assert taobao[4] == "11-20 15:00 (3)"
    jd = [c.strip() for c in lines["jd"].split("|")]
    assert jd[2] == "▁" * 21 + "█" + "▁" * 2 and jd[3] == "1"
    assert "24 hours ending 2026-11-20 15:59 Beijing time" in chart


def test_mart_preview_shows_masked_columns_and_money_in_yuan(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        _fill_orders(conn)
        meta = model_metadata(
            conn, ModelRelation("marts", "fct_orders", {"paid_amount": "goods - discounts"})
        )
    columns = {c.name: c for c in meta["dagster/column_schema"].value.columns}
    assert columns["paid_amount"].type == "numeric(14,2)"
    assert columns["paid_amount"].description == "goods - discounts"
    assert columns["created_at"].type == "timestamp with time zone"
    assert list(columns)[:2] == ["channel", "platform_order_no"]  # the table's order
    preview = meta["preview"].value
    header = [c.strip() for c in preview.splitlines()[0].split("|") if c.strip()]
    assert header == list(PREVIEW_COLUMNS[("marts", "fct_orders")])
    # the five latest written rows, newest first; the oldest write (T1) is left out
    nos = [line.split("|")[2].strip() for line in preview.splitlines()[2:]]
    assert nos == ["J1", "T5", "T4", "T3", "T2"]
    assert "¥1,016,900.00" in preview and "138****5678" in preview
    assert "张三" not in preview and "人民路" not in preview and "尽快" not in preview
    assert not MOBILE.search(preview)


def test_ohi_trend_per_channel(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        conn.execute("create table marts.order_health_daily (day date, channel text, ohi numeric)")
        conn.execute(
            "insert into marts.order_health_daily "
            "select d::date, 'pdd', case when d = '2026-11-19' then 40 else 80 end "
            "from generate_series('2026-11-01'::date, '2026-11-20', interval '1 day') d"
        )
        meta = model_metadata(conn, ModelRelation("marts", "order_health_daily"))
    trend = meta["ohi_trend"].value
    cells = [c.strip() for c in trend.splitlines()[2].split("|")]
    # last 14 days: a dip to 40 on the day before the last
    assert cells[1:-1] == ["pdd", "█" * 12 + "▅█", "80.0", "40.0", "2026-11-20"]
    assert "preview" not in meta


def test_a_broken_preview_query_never_fails_the_run(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        conn.execute("create table marts.fct_orders (channel text)")  # no preview columns
        meta = model_metadata(conn, ModelRelation("marts", "fct_orders"))
        assert conn.execute("select 1").fetchone() == (1,)  # the connection still works
    assert "preview" not in meta


def test_dbt_output_events_get_row_count_and_types_and_a_missing_table_fails_nothing(
    fresh_db,
) -> None:
    """dagster-dbt's Output carries no key, only the key as its name (`marts__fct_orders`)."""
    from orchestration.dbt.assets import _with_model_metadata

    key, gone = dg.AssetKey(["marts", "fct_orders"]), dg.AssetKey(["marts", "gone"])
    tables = {key: '"marts"."fct_orders"', gone: '"marts"."gone"'}
    models = {key: ModelRelation("marts", "fct_orders"), gone: ModelRelation("marts", "gone")}
    outputs = {k.to_python_identifier(): k for k in models}
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        _fill_orders(conn)
        event = dg.Output(None, output_name="marts__fct_orders", metadata={"status": "success"})
        out = _with_model_metadata(event, conn, tables, models, outputs)
        missing = _with_model_metadata(
            dg.Output(None, output_name="marts__gone"), conn, tables, models, outputs
        )
    assert out.metadata["dagster/row_count"].value == 6
    assert out.metadata["status"].value == "success"  # dagster-dbt's own metadata stays
    assert "dagster/column_schema" in out.metadata and "preview" in out.metadata
    assert "dagster/row_count" not in missing.metadata


def test_preview_columns_are_documented_mart_columns_without_clear_pii(dbt_manifest) -> None:
    manifest = json.loads(dbt_manifest.read_text())
    nodes = {
        (n["schema"], n["name"]): n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    }
    for relation, columns in PREVIEW_COLUMNS.items():
        assert set(columns) <= set(nodes[relation]["columns"]), relation
        assert not set(columns) & PII, relation


def test_money_and_sparklines_read_as_such() -> None:
    assert yuan(Decimal("1016900")) == "¥1,016,900.00"
    assert yuan(1016900.0) == "¥1,016,900.00"
    assert yuan(Decimal("-0.5")) == "¥-0.50"
    assert yuan(None) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"


@pytest.mark.slow
def test_dbt_models_carry_row_counts_and_column_types(fresh_db) -> None:
    """A real dbt build of a staging view and the incremental model above it, through the
    `@dbt_assets` op: the events dagster-dbt yields get the row count and the column types."""

    from dbt.adapters.factory import FACTORY

    from connectors.merchant_systems import ensure_merchant_systems_tables
    from orchestration.dbt.definitions import dbt_defs
    from orchestration.dbt.project import dbt_project
    from orchestration.resources import DbtResource, dbt_executable

    with psycopg.connect(fresh_db.url()) as conn:
        ensure_merchant_systems_tables(conn)
        conn.commit()
    view = dg.AssetKey(["staging", "stg_merchant_systems__behaviour_events"])
    stored = dg.AssetKey(["intermediate", "int_behaviour_events"])
    table = dg.AssetKey(["intermediate", "int_cart_adds"])
    FACTORY.reset_adapters()  # an earlier test in this worker may have built one
    (op,) = [d for d in dbt_defs if view in d.keys]
    result = dg.materialize(
        [op],
        selection=[view, stored, table],
        resources={
            "warehouse": WarehouseResource(pg_url=fresh_db.url()),
            "dbt": DbtResource(
                project_dir=dbt_project,
                profiles_dir=str(dbt_project.profiles_dir),
                dbt_executable=dbt_executable(),
            ),
        },
    )
    assert result.success
    # the metadata below is ours: the step built no dbt adapter for dagster-dbt's own fetches
    assert not FACTORY.adapters
    # the step's own dbt target folder went once its parse state was copied to the project's
    target = Path(dbt_project.manifest_path).parent
    assert not list(target.glob(f"{op.op.name}-{result.run_id[:7]}-*"))
    assert (target / "partial_parse.msgpack").exists()
    mats = {
        event.asset_key: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert mats[table]["dagster/row_count"].value == 0
    assert mats[stored]["dagster/row_count"].value == 0
    assert "dagster/row_count" not in mats[view]  # a view is not counted (it would run)
    for key in (view, table):
        types = {c.name: c.type for c in mats[key]["dagster/column_schema"].value.columns}
        assert types and all(types.values()), key
    assert mats[view]["dagster/column_schema"].value.columns[0].description
