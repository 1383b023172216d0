"""`dbt build` over raw rows rendered by the sandbox and stored by the real loaders: one row per
order, the truth's statuses and amounts, masked PII, the bi_reader role, and incremental runs
that end where a full refresh does."""

from __future__ import annotations

import csv
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from connectors.raw_loader import load_orders
from kernel.database import PgConn
from sandbox.model import Order
from tests.dbt.conftest import drop_database, new_database, run_dbt
from tests.dbt.sample_raw import (
    _marketplace_rows,
    fixture_payloads,
    load_sample_orders,
    orders_for,
)

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DETERMINED = {"awaiting_payment", "in_transit", "delivered", "after_sale", "closed"}
# a mainland mobile number standing on its own (in text too: 电话13812345678), not a digit run
# inside a longer id such as an order number or a lettered waybill (JDVA16796014093)
MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")


def _rows(conn: PgConn, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(conn.url()) as db:
        return db.execute(query, params).fetchall()


def test_fct_orders_has_one_row_per_raw_order(built_warehouse: PgConn, sample_orders_all):
    channels = sorted({o.channel for o in sample_orders_all})
    raw = " union all ".join(
        f"select channel, platform_order_no from raw.{c}_orders" for c in channels
    )
    raw_keys = set(_rows(built_warehouse, raw))
    for table in ("fct_orders", "order_holographic"):
        keys = _rows(built_warehouse, f"select channel, platform_order_no from marts.{table}")
        assert len(keys) == len(set(keys)), f"{table} has duplicate keys"
        assert set(keys) == raw_keys, table
    assert raw_keys == {(o.channel, o.platform_order_no) for o in sample_orders_all}


def test_statuses_and_paid_amounts_match_the_truth(built_warehouse: PgConn, sample_orders_all):
    got = {
        (c, n): (status, goods, paid)
        for c, n, status, goods, paid in _rows(
            built_warehouse,
            "select channel, platform_order_no, unified_status, goods_value, paid_amount "
            "from marts.fct_orders",
        )
    }
    truth_paid: dict[str, Decimal] = defaultdict(Decimal)
    got_paid: dict[str, Decimal] = defaultdict(Decimal)
    wrong = []
    for order in sample_orders_all:
        truth = order.truth()
        status, goods, paid = got[order.channel, order.platform_order_no]
        truth_paid[order.channel] += Decimal(truth["paid_amount"])
        got_paid[order.channel] += paid
        if truth["status"] in PLATFORM_DETERMINED and status != truth["status"]:
            wrong.append((order.channel, order.platform_order_no, truth["status"], status))
        if str(goods) != truth["goods_value"] or str(paid) != truth["paid_amount"]:
            wrong.append((order.channel, order.platform_order_no, truth, goods, paid))
    assert not wrong
    assert got_paid == truth_paid
    # every lifecycle is covered, so each platform-determined status was really checked
    assert {o.truth()["status"] for o in sample_orders_all} >= PLATFORM_DETERMINED


def test_status_history_ends_in_the_current_status(built_warehouse: PgConn):
    mismatched = _rows(
        built_warehouse,
        "select o.channel, o.platform_order_no, o.unified_status, h.unified_status "
        "from marts.fct_orders o join marts.fct_order_status_history h "
        "using (channel, platform_order_no) where h.is_current "
        "and h.unified_status <> o.unified_status",
    )
    assert mismatched == []
    open_rows = _rows(
        built_warehouse,
        "select count(*) from marts.fct_order_status_history where left_at is null",
    )[0][0]
    assert open_rows == _rows(built_warehouse, "select count(*) from marts.fct_orders")[0][0]


@pytest.mark.parametrize("build", [(), ("--full-refresh",)], ids=["incremental", "full"])
def test_a_carrier_event_without_an_order_finds_it_by_its_waybill(
    pg: PgConn, built_template: PgConn, tmp_path: Path, build: tuple[str, ...]
):
    """A carrier event that names no order gets the order holding its tracking number; one
    whose waybill is on no order is kept without an order key; events that name their order
    keep it (int_order_fulfillment_events joins only the events without one)."""
    conn = new_database(pg, template=built_template)
    try:
        with psycopg.connect(conn.url(), autocommit=True) as db:
            channel, order_no, tracking_no = db.execute(
                "select channel, platform_order_no, tracking_no from intermediate.int_orders"
                " where tracking_no is not null order by 1, 2 limit 1"
            ).fetchone()
            keyed_before = db.execute(
                "select count(*) from intermediate.int_order_fulfillment_events"
                " where origin = 'carrier' and platform_order_no is not null"
            ).fetchone()[0]
            for event_id, waybill in (("T-UNKEYED-1", tracking_no), ("T-UNKEYED-2", "SF0")):
                payload = {"event_id": event_id, "tracking_no": waybill, "carrier": "SF",
                           "status": "in_transit", "at": "2026-11-23T08:00:00+00:00"}  # fmt: skip
                db.execute(
                    "insert into raw.carrier_tracks"
                    " (event_id, source_modified_at, payload, content_hash)"
                    " values (%s, '2026-11-23T08:00:00+00:00', %s, %s)",
                    [event_id, json.dumps(payload), event_id],
                )
        run_dbt(conn, tmp_path, "run", "--select", "int_order_fulfillment_events", *build)
        found = dict(
            _rows(
                conn,
                "select fulfillment_event_key, (channel, platform_order_no)::text"
                " from intermediate.int_order_fulfillment_events"
                " where starts_with(fulfillment_event_key, 'carrier:T-UNKEYED-')",
            )
        )
        assert found == {
            "carrier:T-UNKEYED-1": f"({channel},{order_no})",
            "carrier:T-UNKEYED-2": "(,)",
        }
        keyed = _rows(
            conn,
            "select count(*) from intermediate.int_order_fulfillment_events"
            " where origin = 'carrier' and platform_order_no is not null",
        )[0][0]
        assert keyed == keyed_before + 1 and keyed_before > 0
    finally:
        drop_database(pg, conn)


def test_status_transitions_follow_the_seeded_state_machine(built_warehouse: PgConn):
    """Every order's events, replayed in seq order through the state machine of the seeds
    (read here from their CSV files, not from the warehouse), give the model's from_status,
    status_after and outcome: the orders the model settles with one window (every event
    allowed from, or repeating, the one before) and the ones it runs through its recursive
    machine (a stale or forbidden event) alike."""
    seeds = ROOT / "dbt_project" / "seeds"
    with (seeds / "status_transitions.csv").open(encoding="utf-8") as f:
        allowed = {(row["from_status"], row["to_status"]) for row in csv.DictReader(f)}
    with (seeds / "unified_statuses.csv").open(encoding="utf-8") as f:
        rank = {row["unified_status"]: int(row["progress_rank"]) for row in csv.DictReader(f)}
    rows = _rows(
        built_warehouse,
        "select channel, platform_order_no, seq, attempted_status, from_status, status_after, "
        "outcome from marts.fct_order_status_transitions order by 1, 2, 3",
    )
    expected, state, order = [], None, None
    for channel, order_no, seq, attempted, *_ in rows:
        if (channel, order_no) != order:
            order, state, before = (channel, order_no), attempted, None
            assert seq == 1, (order, seq)
            outcome = "entered"
        else:
            before = state
            if attempted == state:
                outcome = "repeated"
            elif (state, attempted) in allowed:
                outcome, state = "entered", attempted
            elif 2 <= rank[attempted] < rank[state] <= 10:
                outcome = "stale"  # an earlier step of the normal flow arriving late
            else:
                outcome = "forbidden"
        expected.append((channel, order_no, seq, attempted, before, state, outcome))
    assert [tuple(r) for r in rows] == expected
    outcomes = {r[-1] for r in rows}
    assert {"entered", "repeated", "stale"} <= outcomes, outcomes  # both paths were taken


def test_no_marts_value_is_a_clear_mobile_number(built_warehouse: PgConn):
    with psycopg.connect(built_warehouse.url()) as db:
        # the raw side does hold clear numbers: the check below has something to catch
        clear = db.execute(
            "select count(*) from raw.taobao_orders "
            "where payload -> '_decrypted' ->> 'phone' ~ '^1[3-9][0-9]{9}$'"
        ).fetchone()[0]
        assert clear > 0
        relations = db.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
        assert len(relations) >= 15
        leaks = []
        for (name,) in relations:
            cols = db.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = %s",
                [name],
            ).fetchall()
            row_text = sql.SQL(" || ' ' || ").join(
                sql.SQL("coalesce({}::text, '')").format(sql.Identifier(c)) for (c,) in cols
            )
            query = sql.SQL("select {} from marts.{}").format(row_text, sql.Identifier(name))
            for (text,) in db.execute(query):
                leaks += [(name, m) for m in MOBILE.findall(text)]
        assert leaks == []
        masked = db.execute(
            "select receiver_phone from marts.fct_orders where channel = 'taobao' limit 1"
        ).fetchone()[0]
        assert re.fullmatch(r"1[3-9][0-9]\*{4}[0-9]{4}", masked)


def test_every_marts_column_is_described_in_yaml(built_warehouse: PgConn, built_dbt_path: Path):
    """Every column of every relation in `marts`, as the database has it, carries a
    description in the models' YAML (what `dbt docs` and BI users read)."""
    import json

    manifest = json.loads((built_dbt_path / "target" / "manifest.json").read_text())
    described = {
        (node["name"], column): bool((spec.get("description") or "").strip())
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
        for column, spec in node["columns"].items()
    }
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    actual = _rows(
        built_warehouse,
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'marts' order by table_name, ordinal_position",
    )
    assert {t for t, _ in actual} >= {"fct_orders", "order_holographic", "dim_buyers"}
    assert sum(described.values()) > 200
    missing = [f"{t}.{c}" for t, c in actual if t in models and not described.get((t, c))]
    assert not missing, f"columns without a description: {missing}"


def test_bi_reader_reads_marts_and_nothing_else(built_warehouse: PgConn):
    with psycopg.connect(built_warehouse.url(), autocommit=True) as db:
        db.execute("set role bi_reader")
        assert db.execute("select count(*) from marts.order_holographic").fetchone()[0] > 0
        assert db.execute("select count(*) from marts.fct_order_funnel_daily").fetchone()[0] > 0
        for relation in ("raw.taobao_orders", "staging.stg_taobao__orders", "ops.review_queue"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(f"select count(*) from {relation}")


def test_payload_fixtures_map_onto_the_standard_fields(built_warehouse: PgConn):
    """tests/fixtures/payloads/<platform>.json (one order, the same on every platform: goods
    295.90, platform coupon 20.00, shop coupon 5.00, freight 8.00, paid 278.90, cross-border,
    delivered) read through the live staging views gives those standard values."""
    fixtures = fixture_payloads()
    if not fixtures:
        pytest.skip("no tests/fixtures/payloads yet")
    expected = (
        Decimal("295.90"), Decimal("20.00"), Decimal("5.00"), Decimal("25.00"),
        Decimal("8.00"), Decimal("278.90"), "delivered", True, True,
    )  # fmt: skip
    with psycopg.connect(built_warehouse.url()) as db:
        for platform, payloads in fixtures.items():
            payload = {**payloads[0], "_decrypted": {"name": "张三", "phone": "13800001111",
                                                     "address": "文三路 90 号"}}  # fmt: skip
            db.execute(
                f"insert into raw.{platform}_orders (channel, platform_order_no, "
                "source_modified_at, payload, content_hash) values (%s, 'fixture', now(), %s, 'x')",
                [platform, psycopg.types.json.Jsonb(payload)],
            )
            row = db.execute(
                "select s.goods_value, s.platform_discount, s.shop_discount, s.discount_amount, "
                "s.freight, s.paid_amount, p.platform_unified_status, s.hs_code is not null, "
                "s.created_at < s.paid_at and s.paid_at < s.shipped_at "
                "and s.shipped_at < coalesce(s.delivered_at, s.modified_at) "
                f"from staging.stg_{platform}__orders s "
                "join intermediate.int_order_platform_status p using (channel, platform_order_no) "
                "where s.platform_order_no = 'fixture'"
            ).fetchone()
            assert row == expected, platform
            lines = db.execute(
                f"select count(*), sum(line_goods_value) from staging.stg_{platform}__order_items "
                "where platform_order_no = 'fixture'"
            ).fetchone()
            assert lines == (2, Decimal("295.90")), platform
        db.rollback()


def _advance(order: Order) -> Order:
    """The order one step further along its lifecycle (a late update from the platform)."""
    step = {(): "pay", ("pay",): "ship", ("pay", "ship"): "deliver"}.get(
        tuple(e.type for e in order.events)
    )
    if step is None:
        return order
    at = order.modified_at + timedelta(hours=1)
    data = order.model_dump()
    data["events"] = [*data["events"], {"at": at, "type": step}]
    return Order.model_validate(data)


BEIJING = timezone(timedelta(hours=8))

SNAPSHOT_TABLES = {
    "fct_orders": "channel, platform_order_no",
    "fct_order_items": "channel, platform_order_no, line_no",
    "order_holographic": "channel, platform_order_no",
    "fct_order_status_history": "channel, platform_order_no, status_seq",
    "fct_order_status_violations": "channel, platform_order_no, seq",
    "fct_after_sales": "channel, platform_order_no",
    "fct_logistics_tracks": "track_event_key",
    "fct_inventory_movements": "movement_key",
    "dim_buyers": "channel, buyer_id",
    "dim_skus": "sku",
    "order_health_checks": "channel, platform_order_no",
    "order_health_daily": "day, channel",
}
VOLATILE = {
    "_built_at", "_built_xid", "_written_xid", "loaded_at", "hours_in_status",
    "is_stock_sync_stale",
}  # fmt: skip


def _snapshot(db: psycopg.Connection) -> dict[str, list[tuple]]:
    out = {}
    for table, order_by in SNAPSHOT_TABLES.items():
        cols = [
            c
            for (c,) in db.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'marts' and table_name = %s order by ordinal_position",
                [table],
            )
            if c not in VOLATILE
        ]
        query = sql.SQL("select {} from marts.{} order by {}").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)),
            sql.Identifier(table),
            sql.SQL(order_by),
        )
        out[table] = db.execute(query).fetchall()
    return out


def _assert_a_full_refresh_gives(
    incremental: dict[str, list[tuple]], conn: PgConn, tmp_path: Path
) -> None:
    """The marts rebuilt from scratch equal what the incremental builds left. Models only
    (`dbt run`): what is compared is the rows; the data tests ran on the builds before."""
    run_dbt(conn, tmp_path, "run", "--full-refresh")
    with psycopg.connect(conn.url()) as db:
        full = _snapshot(db)
    for table in SNAPSHOT_TABLES:
        assert incremental[table] == full[table], table


FIRST_CHANNELS = ("taobao", "pdd", "regional_a")


@pytest.fixture(scope="module")
def first_build(
    pg: PgConn, sample_orders_all: list[Order], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PgConn]:
    """Three channels' sample orders after one `dbt build`, built once for the module's
    incremental tests: each copies it (`new_database(pg, template=...)`, about a second) and
    goes on from there, where each would otherwise load and build again."""
    conn = new_database(pg)
    first = [o for o in sample_orders_all if o.channel in FIRST_CHANNELS]
    with psycopg.connect(conn.url()) as db:
        load_sample_orders(db, first)
    run_dbt(conn, tmp_path_factory.mktemp("first_build"), "build")
    yield conn
    drop_database(pg, conn)


def _copy_of(pg: PgConn, built: PgConn) -> PgConn:
    """A copy of `built` that goes on incrementally: dbt registers each build under the
    model's full name, database included (`"dbt_1"."marts"."fct_orders"`), so the copy's
    register is renamed to its own database; otherwise its first build would find no earlier
    build and rebuild every row."""
    conn = new_database(pg, template=built)
    with psycopg.connect(conn.url()) as db:
        db.execute(
            "update intermediate.model_builds set model = replace(model, %s, %s)",
            [f'"{built.dbname}".', f'"{conn.dbname}".'],
        )
    return conn


@pytest.fixture
def first_build_copy(pg: PgConn, first_build: PgConn) -> Iterator[PgConn]:
    """A copy of `first_build` (`_copy_of`) for one test, dropped after it."""
    conn = _copy_of(pg, first_build)
    yield conn
    drop_database(pg, conn)


@pytest.mark.slow
@pytest.mark.parametrize(
    "probe_share",
    [0.0, 1.0],
    ids=["changed-orders-joined", "changed-orders-probed"],
)
def test_incremental_build_ends_where_a_full_refresh_does(
    pg: PgConn,
    tmp_path: Path,
    sample_orders_all: list[Order],
    first_build: PgConn,
    probe_share: float,
):
    """The same rows as a full refresh, whichever way the models read their changed orders'
    rows (`rows_of_changed_orders`: a join for a large change, an index probe per order for a
    small one; `probe_share` forces each)."""
    conn = _copy_of(pg, first_build)
    try:
        first = [o for o in sample_orders_all if o.channel in FIRST_CHANNELS]

        # late updates: orders move on, new orders arrive, a risk hold lands on a paid order
        later = [_advance(o) for o in first[::2]]
        new = [o for o in orders_for(["taobao", "jd"], 24) if o.channel == "jd"]
        assert any(a.events != b.events for a, b in zip(later, first[::2], strict=True))
        paid = next(
            o for o in first if o.channel == "taobao" and o.status_at() == "paid_pending_review"
        )
        with psycopg.connect(conn.url()) as db:
            load_sample_orders(db, later + new)
            db.execute(
                "insert into ops.risk_assessments (channel, platform_order_no, score, signals) "
                "values ('taobao', %s, 93, '{\"night_payment\": \"03:10\"}')",
                [paid.platform_order_no],
            )
            db.commit()
        run_dbt(conn, tmp_path, "build", "--vars", json.dumps({"probe_share": probe_share}))
        (history,) = (tmp_path / "target" / "compiled").rglob("fct_order_status_history.sql")
        assert ("offset 0" in history.read_text()) == (probe_share > 0)
        with psycopg.connect(conn.url()) as db:
            incremental = _snapshot(db)
            held = db.execute(
                "select unified_status from marts.fct_orders where platform_order_no = %s",
                [paid.platform_order_no],
            ).fetchone()[0]
            jd_rows = db.execute(
                "select count(*) from marts.order_holographic where channel = 'jd'"
            ).fetchone()[0]
        assert held == "risk_review"
        assert jd_rows == len(new)

        _assert_a_full_refresh_gives(incremental, conn, tmp_path)
    finally:
        drop_database(pg, conn)


def test_a_full_build_reads_whole_tables_and_an_incremental_one_probes(
    tmp_path: Path, first_build_copy: PgConn
):
    """The models whose full build reads every row of the facts they join turn index scans
    off for that build alone (`set local`, the model's transaction); their incremental builds
    keep the planner's index probes into the changed orders."""
    models = ["order_holographic", "fct_order_items", "dim_buyers"]

    def hooked(path: Path, *args: str) -> int:
        run_dbt(first_build_copy, path, "run", "-s", *models, *args)
        return (path / "logs" / "dbt.log").read_text().count("set local enable_indexscan = off")

    assert hooked(tmp_path / "incremental") == 0
    assert hooked(tmp_path / "full", "--full-refresh") == len(models)
    with psycopg.connect(first_build_copy.url()) as db:
        assert db.execute("select count(*) from marts.order_holographic").fetchone()[0] > 0


@pytest.mark.slow
def test_a_buyers_new_order_brings_their_history_to_every_order_they_placed(
    tmp_path: Path, sample_orders_all: list[Order], first_build_copy: PgConn
):
    """A buyer's new order changes the history (orders, amount paid) the holographic shows on
    all their orders: the orders whose own facts did not change get it in place, nothing else
    of theirs rewritten; an order of a buyer whose history did not change is left as it was;
    and the whole equals a full refresh."""
    conn = first_build_copy
    ((buyer, placed),) = _rows(
        conn,
        "select buyer_id, count(*) from marts.order_holographic where channel = 'taobao' "
        "group by buyer_id order by count(*) desc, buyer_id limit 1",
    )
    mine = [o for o in sample_orders_all if o.channel == "taobao" and o.buyer_id == buyer]
    assert len(mine) == placed
    again = Order.model_validate(
        {**mine[0].model_dump(), "platform_order_no": mine[0].platform_order_no + "7"}
    )
    read = (
        "select platform_order_no, buyer_orders, buyer_paid_amount, _written_xid, "
        "items_json::text from marts.order_holographic where channel = 'taobao' "
        "and buyer_id = %s order by platform_order_no"
    )
    before = _rows(conn, read, (buyer,))
    ((other, other_xid),) = _rows(
        conn,
        "select platform_order_no, _written_xid from marts.order_holographic "
        "where channel = 'taobao' and buyer_id <> %s order by platform_order_no limit 1",
        (buyer,),
    )
    with psycopg.connect(conn.url()) as db:
        load_sample_orders(db, [again])
    run_dbt(conn, tmp_path, "run")

    after = _rows(conn, read, (buyer,))
    ((orders, paid),) = _rows(
        conn,
        "select orders, paid_amount from marts.dim_buyers "
        "where channel = 'taobao' and buyer_id = %s",
        (buyer,),
    )
    assert orders == placed + 1
    assert [(no, n, amount) for no, n, amount, _, _ in after] == [
        (no, orders, paid) for no, *_ in after
    ]
    assert paid > before[0][2]
    # the buyer's earlier orders: rewritten in place, their own columns as they were
    earlier = {no: (xid, items) for no, _, _, xid, items in before}
    for no, _, _, xid, items in after:
        if no in earlier:
            assert xid > earlier[no][0]
            assert items == earlier[no][1]
    assert _rows(
        conn,
        "select _written_xid from marts.order_holographic "
        "where channel = 'taobao' and platform_order_no = %s",
        (other,),
    ) == [(other_xid,)]
    with psycopg.connect(conn.url()) as db:
        incremental = _snapshot(db)
    _assert_a_full_refresh_gives(incremental, conn, tmp_path)


@pytest.mark.slow
def test_transitions_write_only_the_orders_whose_rows_changed(
    tmp_path: Path, sample_orders_all: list[Order], first_build_copy: PgConn
):
    """`fct_order_status_transitions` (incremental strategy `sync`): an order that moved on
    keeps its stored transitions and gains the new ones; an order one of whose stored rows
    differs from what the build computes is replaced whole (the stale row gone, every row
    written again, so the history downstream is redone); an order that did not change is not
    touched."""
    conn = first_build_copy
    movable = [
        o for o in sample_orders_all if o.channel == "taobao" and _advance(o).events != o.events
    ]
    moved, tampered, untouched = movable[0], movable[1], movable[2]
    read = (
        "select seq, origin, _written_xid from marts.fct_order_status_transitions "
        "where channel = 'taobao' and platform_order_no = %s order by seq"
    )
    before = {o.platform_order_no: _rows(conn, read, (o.platform_order_no,)) for o in movable[:3]}
    with psycopg.connect(conn.url()) as db:
        db.execute(
            "update marts.fct_order_status_transitions set origin = 'stale' "
            "where channel = 'taobao' and platform_order_no = %s and seq = 1",
            [tampered.platform_order_no],
        )
        load_sample_orders(db, [_advance(moved), _advance(tampered)])
    run_dbt(conn, tmp_path, "run")
    ((built,),) = _rows(
        conn,
        "select max(_written_xid) from marts.fct_order_status_transitions",
    )

    after = _rows(conn, read, (moved.platform_order_no,))
    kept = before[moved.platform_order_no]
    assert after[: len(kept)] == kept
    assert len(after) > len(kept)
    assert {xid for _, _, xid in after[len(kept) :]} == {built}

    replaced = _rows(conn, read, (tampered.platform_order_no,))
    assert "stale" not in {origin for _, origin, _ in replaced}
    assert {xid for _, _, xid in replaced} == {built}

    assert _rows(conn, read, (untouched.platform_order_no,)) == before[untouched.platform_order_no]
    # the history downstream was redone for both changed orders
    redone = _rows(
        conn,
        "select distinct platform_order_no from marts.fct_order_status_history "
        "where _written_xid = (select max(_written_xid) from marts.fct_order_status_history)",
    )
    assert {no for (no,) in redone} == {moved.platform_order_no, tampered.platform_order_no}


HEALTH_MODELS = ("--select", "order_health_checks", "order_health_daily")


def _health_checks(db: psycopg.Connection) -> dict[tuple[str, str], tuple]:
    """(channel, order) -> (_written_xid, checks_version, fields_expected, modified_at)."""
    return {
        (channel, no): rest
        for channel, no, *rest in db.execute(
            "select channel, platform_order_no, _written_xid, checks_version, fields_expected, "
            "modified_at from marts.order_health_checks"
        )
    }


@pytest.mark.slow
def test_order_health_checks_redo_only_the_changed_order(
    tmp_path: Path, sample_orders_all: list[Order], first_build_copy: PgConn
):
    """order_health_checks (one row per order, incremental): a change to one order's raw row
    rewrites that order's row alone, a build with nothing new rewrites none, and
    order_health_daily (a table over it) equals a full refresh."""
    conn = first_build_copy
    moved = next(
        o for o in sample_orders_all if o.channel == "taobao" and _advance(o).events != o.events
    )
    key = ("taobao", moved.platform_order_no)
    with psycopg.connect(conn.url()) as db:
        before = _health_checks(db)
        load_sample_orders(db, [_advance(moved)])
    assert key in before and len(before) > 100
    run_dbt(conn, tmp_path, "run")
    with psycopg.connect(conn.url()) as db:
        after = _health_checks(db)
    newest = max(xid for xid, *_ in after.values())
    assert newest > max(xid for xid, *_ in before.values())
    assert [k for k, (xid, *_) in after.items() if xid == newest] == [key]
    assert after[key][3] > before[key][3]  # the order's new modified time
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }

    run_dbt(conn, tmp_path, "run", *HEALTH_MODELS)  # nothing changed since
    with psycopg.connect(conn.url()) as db:
        assert _health_checks(db) == after
        incremental = _snapshot(db)
    _assert_a_full_refresh_gives(incremental, conn, tmp_path)


@pytest.mark.slow
def test_order_health_checks_are_all_redone_when_their_settings_change(
    tmp_path: Path, first_build_copy: PgConn
):
    """The checks stored per order depend on the completeness settings: once operations change
    them (here a dbt --vars override of `order_health_index`), the next incremental build
    checks every order again, though no order changed, and ends where a full refresh with
    the same settings does."""
    conn = first_build_copy
    project = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())
    settings = project["vars"]["order_health_index"]
    required = settings["completeness"]["required_fields"]
    settings["completeness"]["required_fields"] = [f for f in required if f != "shop_id"]
    edited = ("--vars", json.dumps({"order_health_index": settings}))
    with psycopg.connect(conn.url()) as db:
        before = _health_checks(db)
    run_dbt(conn, tmp_path, "run", *HEALTH_MODELS, *edited)
    with psycopg.connect(conn.url()) as db:
        after = _health_checks(db)
        incremental = _snapshot(db)
    assert set(after) == set(before)
    old_xid = max(xid for xid, *_ in before.values())
    assert all(xid > old_xid for xid, *_ in after.values())
    versions = {version for _, version, *_ in after.values()}
    assert len(versions) == 1 and versions.isdisjoint(v for _, v, *_ in before.values())
    assert all(after[k][2] == v[2] - 1 for k, v in before.items())  # one field fewer expected

    run_dbt(conn, tmp_path, "run", "--full-refresh", *HEALTH_MODELS, *edited)
    with psycopg.connect(conn.url()) as db:
        full = _snapshot(db)
    for table in ("order_health_checks", "order_health_daily"):
        assert incremental[table] == full[table], table


# incremental models that find their work with `changed_rows` (rows of a parent model written
# since their own last build)
REDONE_BY_CHANGED_ROWS = (
    "intermediate.int_order_fulfillment_status", "marts.fct_order_status_transitions",
    "marts.fct_order_status_history", "marts.fct_order_status_violations",
    "marts.order_holographic", "marts.dim_buyers", "marts.fct_after_sales",
)  # fmt: skip


def _analyze_counts(db: psycopg.Connection) -> dict[str, int]:
    """Manual ANALYZEs so far of each incremental model's table (the post-hook's), once dbt's
    sessions have gone: a backend reports its statistics before it leaves pg_stat_activity."""
    for _ in range(100):
        others = db.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid() and backend_type = 'client backend'"
        ).fetchone()[0]
        if not others:
            break
        time.sleep(0.1)
    db.execute("select pg_stat_clear_snapshot()")
    return dict(
        db.execute(
            "select schemaname || '.' || relname, analyze_count from pg_stat_user_tables "
            "where relname = any(%s)",
            [[t.split(".")[1] for t in REDONE_BY_CHANGED_ROWS]],
        ).fetchall()
    )


@pytest.mark.slow
def test_a_transaction_open_during_a_build_does_not_make_the_next_build_redo_it(
    pg: PgConn, tmp_path: Path, sample_orders_all: list[Order], first_build: PgConn
):
    """A build registers where it began by its snapshot, not by the oldest transaction still
    open then (another dbt thread's model, a loader): the next build takes only what the one
    before did not see. By xmin alone a transaction open through a build made the next build
    redo every row that build wrote. (Models only, `dbt run`: the rows and the register are
    the subject; the incremental builds' data tests run in the tests above and below.)"""
    conn = _copy_of(pg, first_build)
    try:
        first = [o for o in sample_orders_all if o.channel in FIRST_CHANNELS]
        with psycopg.connect(conn.url()) as db:
            load_sample_orders(db, [_advance(o) for o in first[::2]])
            db.commit()
        with psycopg.connect(conn.url(), autocommit=True) as db:
            analyzed_first = _analyze_counts(db)
        with psycopg.connect(conn.url()) as blocker:
            blocker.execute("select pg_current_xact_id()")  # holds a transaction id, open
            run_dbt(conn, tmp_path, "run")
            blocker.rollback()

        with psycopg.connect(conn.url(), autocommit=True) as db:
            before = db.execute("select pg_current_xact_id()::text::bigint").fetchone()[0]
            analyzed = _analyze_counts(db)
            unseen = _newest_builds_missing_from_statistics(db)
            estimates = _newest_build_estimates(db)
            run_dbt(conn, tmp_path, "run")  # nothing changed since the last build
            redone = {
                table: db.execute(
                    sql.SQL("select count(*) from {} where _written_xid > %s").format(
                        sql.Identifier(*table.split("."))
                    ),
                    [before],
                ).fetchone()[0]
                for table in REDONE_BY_CHANGED_ROWS
            }
            incremental = _snapshot(db)
            # a build that wrote nothing does not sample its table for statistics again
            analyzed_again = _analyze_counts(db)
        assert redone == dict.fromkeys(REDONE_BY_CHANGED_ROWS, 0)
        # the builds that wrote rows put their own ids in the statistics of `_written_xid`
        # without sampling the table (no ANALYZE), with about the share of rows they wrote
        assert unseen == []
        assert analyzed == analyzed_first
        assert {t: e for t, e in estimates.items() if not e[1] / 2 <= e[0] <= e[1] * 2} == {}
        assert analyzed_again == analyzed
        _assert_a_full_refresh_gives(incremental, conn, tmp_path)
    finally:
        drop_database(pg, conn)


def _newest_builds_missing_from_statistics(db: psycopg.Connection) -> list[str]:
    """The incremental tables whose newest `_written_xid` is not among the most common values
    of the column's statistics (downstream models find the rows a build wrote by it)."""
    tables = db.execute(
        "select c.table_schema || '.' || c.table_name from information_schema.columns as c "
        "join information_schema.tables as t using (table_schema, table_name) "
        "where c.column_name = '_written_xid' and t.table_type = 'BASE TABLE' "
        "and c.table_schema in ('intermediate', 'marts')"
    ).fetchall()
    missing = []
    for (table,) in tables:
        newest = db.execute(
            sql.SQL("select max(_written_xid) from {}").format(sql.Identifier(*table.split(".")))
        ).fetchone()[0]
        common = db.execute(
            "select most_common_vals::text::bigint[] from pg_stats "
            "where schemaname || '.' || tablename = %s and attname = '_written_xid'",
            [table],
        ).fetchone()
        if newest is not None and (common is None or newest not in (common[0] or [])):
            missing.append(table)
    return sorted(missing)


def _newest_build_estimates(db: psycopg.Connection) -> dict[str, tuple[float, int]]:
    """Per table that a model found its work in: the planner's estimate of the rows its newest
    build wrote (`_written_xid` = that build) beside their count."""
    estimates = {}
    for table in REDONE_BY_CHANGED_ROWS:
        name = sql.Identifier(*table.split("."))
        row = db.execute(
            sql.SQL(
                "select _written_xid, count(*) from {} group by 1 order by 1 desc limit 1"
            ).format(name)
        ).fetchone()
        if row is None:  # a table with no rows (no violations in the sample)
            continue
        newest, written = row
        plan = db.execute(
            sql.SQL("explain (format json) select * from {} where _written_xid = %s").format(name),
            [newest],
        ).fetchone()[0]
        estimates[table] = (plan[0]["Plan"]["Plan Rows"], written)
    return estimates


def _set_taobao_refund(db: psycopg.Connection, order_no: str, refund: str, at: str) -> None:
    """What a later pull of the order stores: its lines' refund status, a newer modified
    time (Beijing wall clock, Taobao's format) and the load's time, as the loader stamps it
    (builds find changed raw rows by it: left as first loaded, the change went unseen once
    five minutes had passed since the first build, as on a busy CI machine)."""
    db.execute(
        """update raw.taobao_orders
        set payload = jsonb_set(
                jsonb_set(payload, '{orders,order,0,refund_status}', to_jsonb(%s::text)),
                '{modified}', to_jsonb(%s::text)),
            source_modified_at = %s::timestamp at time zone 'Asia/Shanghai',
            loaded_at = now()
        where platform_order_no = %s""",
        [refund, at, at, order_no],
    )


@pytest.mark.slow
def test_a_load_committed_during_a_build_is_taken_by_the_next_one(
    pg: PgConn, tmp_path: Path, sample_orders_all: list[Order], first_build: PgConn
):
    """Incremental models find new raw rows by xmin and by `loaded_at` (the `loaded_at` index
    spares a scan of the whole raw table). A loader's rows carry its transaction's start: a
    load that began before a build and committed after the build's snapshot is stamped
    earlier than the build, and the next build must still take it (the build noted when the
    oldest transaction then running began). No clock margin here, so a bound taken from the
    build's own start would miss the load."""
    conn = _copy_of(pg, first_build)
    no_margin = ("--vars", "{loaded_since_margin: '0 seconds'}")
    try:
        taobao = [o for o in sample_orders_all if o.channel == "taobao"]
        later = [_advance(o) for o in taobao]
        assert any(a.events != b.events for a, b in zip(later, taobao, strict=True))
        with psycopg.connect(conn.url()) as loader:
            began = loader.execute("select now()").fetchone()[0]  # loaded_at of its rows
            time.sleep(1.5)
            load_orders(loader, "taobao", _marketplace_rows("taobao", later), run_id="late")
            run_dbt(conn, tmp_path, "run", *no_margin, ensure_tables=False)
            loader.commit()
        run_dbt(conn, tmp_path, "run", *no_margin)
        with psycopg.connect(conn.url()) as db:
            stamped, built = db.execute(
                "select (select min(loaded_at) from raw.taobao_orders where run_id = 'late'), "
                "(select loaded_since from intermediate.model_builds "
                "where model like '%%int_orders\"')"
            ).fetchone()
            incremental = _snapshot(db)
        assert stamped == began and built is not None
        _assert_a_full_refresh_gives(incremental, conn, tmp_path)
    finally:
        drop_database(pg, conn)


@pytest.mark.slow
def test_a_withdrawn_refund_leaves_the_after_sales(
    pg: PgConn, tmp_path: Path, sample_orders_all: list[Order], first_build: PgConn
):
    """Incremental models rebuilt per order drop an order that no longer qualifies (Taobao:
    refund requested, then withdrawn), as a full refresh would. (Models only, `dbt run`: the
    rows are the subject.)"""
    conn = _copy_of(pg, first_build)
    try:
        orders = [o for o in sample_orders_all if o.channel == "taobao"]
        shipped = next(o for o in orders if o.status_at() == "in_transit")
        no = shipped.platform_order_no
        later = (shipped.modified_at + timedelta(days=1)).astimezone(BEIJING)
        with psycopg.connect(conn.url()) as db:
            _set_taobao_refund(db, no, "WAIT_BUYER_RETURN_GOODS", f"{later:%Y-%m-%d %H:%M:%S}")
            db.commit()
        run_dbt(conn, tmp_path, "run")
        query = "select after_sale_kind from marts.fct_after_sales where platform_order_no = %s"
        assert _rows(conn, query, (no,)) == [("return",)]

        with psycopg.connect(conn.url()) as db:
            withdrawn = later + timedelta(hours=2)
            _set_taobao_refund(db, no, "CLOSED", f"{withdrawn:%Y-%m-%d %H:%M:%S}")
            db.commit()
        run_dbt(conn, tmp_path, "run")
        assert _rows(conn, query, (no,)) == []
        status = "select unified_status from marts.fct_orders where platform_order_no = %s"
        assert _rows(conn, status, (no,)) == [("in_transit",)]
        with psycopg.connect(conn.url()) as db:
            incremental = _snapshot(db)
        _assert_a_full_refresh_gives(incremental, conn, tmp_path)
    finally:
        drop_database(pg, conn)


def _failing_tests(result) -> dict[str, int]:  # noqa: ANN001
    """dbt's "Failure in test <name>" ... "Got <n> result(s)" pairs from its output."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    failures = {}
    for name, count in re.findall(r"Failure in test (\w+) .*?Got (\d+) results?", text, flags=re.S):
        failures[name] = int(count)
    return failures


def test_row_checks_name_every_check_a_row_fails(
    tmp_path: Path, sample_orders_all: list[Order], first_build_copy: PgConn
):
    """A large model's per-row checks run as one test: each failing row comes back once with
    every check it fails named; a row failing none is not returned."""
    conn = first_build_copy
    with psycopg.connect(conn.url()) as db:
        bad, odd = db.execute(
            "select platform_order_no from marts.fct_orders where channel = 'taobao' "
            "and paid_amount > 1 order by platform_order_no limit 2"
        ).fetchall()
        db.execute(
            "update marts.fct_orders set freight = -5, unified_status = 'lost' "
            "where channel = 'taobao' and platform_order_no = %s",
            bad,
        )
        db.execute(
            "update marts.fct_orders set receiver_phone = 'call 13912345678' "
            "where channel = 'taobao' and platform_order_no = %s",
            odd,
        )
        db.commit()
    result = run_dbt(
        conn, tmp_path, "test", "--select", "fct_orders_row_checks", "--store-failures",
        "--vars", '{"test_all_rows": true}', check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert _failing_tests(result) == {"fct_orders_row_checks": 2}
    with psycopg.connect(conn.url()) as db:
        (schema,) = db.execute(
            "select table_schema from information_schema.tables "
            "where table_name = 'fct_orders_row_checks'"
        ).fetchone()
        failed = dict(
            db.execute(
                sql.SQL(
                    "select platform_order_no, failed_checks from {}.fct_orders_row_checks"
                ).format(sql.Identifier(schema))
            ).fetchall()
        )
    assert failed == {
        bad[0]: "freight is negative; unified_status is not an accepted value; "
        "paid amount does not reconcile",
        odd[0]: "receiver_phone holds an unmasked phone number",
    }


@pytest.mark.slow
def test_data_tests_check_the_rows_each_build_wrote(
    pg: PgConn, tmp_path: Path, sample_orders_all: list[Order], first_build: PgConn
):
    """On an incremental run a data test of an incremental model reads the rows its build
    wrote; `test_all_rows` (the nightly job) reads every row."""
    conn = _copy_of(pg, first_build)
    try:
        orders = [o for o in sample_orders_all if o.channel == "taobao"]
        moving = [o for o in orders if _advance(o) is not o][:5]
        assert moving, "the sample should hold orders that can move on"
        still = next(o for o in orders if o not in moving)
        with psycopg.connect(conn.url()) as db:
            # a row goes bad behind dbt's back; it keeps the transaction id of its build
            db.execute(
                "update marts.fct_orders set paid_amount = -1 "
                "where channel = 'taobao' and platform_order_no = %s",
                [still.platform_order_no],
            )
            load_sample_orders(db, [_advance(o) for o in moving])
            db.commit()

        # the incremental build rewrites the moving orders and tests those rows: it passes
        run_dbt(conn, tmp_path, "build")
        with psycopg.connect(conn.url()) as db:
            rewritten = db.execute(
                "select count(*) from marts.fct_orders where _written_xid >= "
                "(select built_xid from intermediate.model_builds where model like '%fct_orders\"' "
                "order by built_at desc limit 1)"
            ).fetchone()[0]
        assert rewritten == len(moving)

        # every row: the old bad row is found
        every = run_dbt(
            conn, tmp_path, "test", "--select", "fct_orders",
            "--vars", '{"test_all_rows": true}', check=False,
        )  # fmt: skip
        assert every.returncode != 0
        assert _failing_tests(every).get("fct_orders_row_checks") == 1

        # a row written after the build began is in scope of a plain `dbt test`
        with psycopg.connect(conn.url()) as db:
            db.execute(
                "update marts.fct_orders set paid_amount = -2, "
                "_written_xid = pg_current_xact_id()::text::bigint "
                "where channel = 'taobao' and platform_order_no = %s",
                [moving[0].platform_order_no],
            )
            db.commit()
        scoped = run_dbt(conn, tmp_path, "test", "--select", "fct_orders", check=False)
        assert scoped.returncode != 0
        # only the new bad row: the old one is not in this build's scope
        assert _failing_tests(scoped).get("fct_orders_row_checks") == 1
    finally:
        drop_database(pg, conn)


@pytest.mark.slow
def test_lines_whose_order_is_gone_fail_has_parent_order_once_per_order(
    pg: PgConn, tmp_path: Path, first_build: PgConn
):
    """`has_parent_order` (an anti-join on the parent's key) finds the order a mart's rows
    point at and the parent lacks, in every row (`test_all_rows`) and in the rows the latest
    build wrote (a plain run); an order with several lines counts once."""
    conn = _copy_of(pg, first_build)
    try:
        with psycopg.connect(conn.url()) as db:
            channel, order_no, lines = db.execute(
                "select channel, platform_order_no, count(*) from marts.fct_order_items "
                "group by 1, 2 having count(*) > 1 order by 1, 2 limit 1"
            ).fetchone()
            db.execute(
                "delete from marts.fct_orders where channel = %s and platform_order_no = %s",
                [channel, order_no],
            )
            db.commit()
        assert lines > 1

        def failures(*args: str) -> int | None:
            result = run_dbt(conn, tmp_path, "test", "--select", "fct_order_items", *args,
                             check=False)  # fmt: skip
            found = {
                name: count for name, count in _failing_tests(result).items()
                if name.startswith("has_parent_order_fct_order_items")
            }  # fmt: skip
            assert len(found) <= 1, found
            return next(iter(found.values()), None)

        assert failures("--vars", '{"test_all_rows": true}') == 1
        # a plain run reads the rows the latest build wrote: the first build wrote them all
        assert failures() == 1
    finally:
        drop_database(pg, conn)


def _table_reads(db: psycopg.Connection, compiled: str, table: str) -> int:
    """How many times the plan of a test's compiled SQL read `table` (its scans' loops)."""
    plan = db.execute(f"explain (analyze, format json) {compiled}").fetchone()[0][0]["Plan"]
    reads, todo = 0, [plan]
    while todo:
        node = todo.pop()
        if node.get("Relation Name") == table:
            reads += node["Actual Loops"]
        todo.extend(node.get("Plans", []))
    return reads


@pytest.mark.slow
def test_a_unique_index_answers_the_uniqueness_tests_and_without_it_they_scan(
    pg: PgConn, tmp_path: Path, first_build: PgConn
):
    """`unique` and `unique_combination_of_columns` over every row: with a unique index on
    exactly their columns they read the catalog, not the table, and still find what the index
    lets through (tuples with a null); without the index they group every row."""
    conn = _copy_of(pg, first_build)
    every = ("--vars", '{"test_all_rows": true}')

    def failures(select: str, *args: str) -> dict[str, int]:
        result = run_dbt(conn, tmp_path, "test", "--select", select, *args, check=False)
        return _failing_tests(result)

    def compiled(test: str) -> str:
        (path,) = (tmp_path / "target" / "compiled").rglob(f"{test}.sql")
        return path.read_text()

    keys_test = "unique_dim_buyers_buyer_key"
    buyers = "marts.dim_buyers"
    seq_test = (
        "unique_combination_of_columns_fct_order_status_transitions_channel__platform_order_no__seq"
    )
    try:
        with psycopg.connect(conn.url(), autocommit=True) as db:
            assert db.execute(f"select count(*) from {buyers}").fetchone()[0] > 100
            db.execute(f"create unique index guard_buyer_key on {buyers} (buyer_key)")
            assert failures(keys_test, *every) == {}
            assert _table_reads(db, compiled(keys_test), "dim_buyers") == 0
            # scoped to the latest build's rows (a plain run): the index guards those too
            assert failures(keys_test) == {}
            assert "_written_xid >=" in compiled(keys_test)
            assert _table_reads(db, compiled(keys_test), "dim_buyers") == 0

            # the index lets two keys with a null seq through; the test's grouping does not
            db.execute(
                "create temp table twice as select * from marts.fct_order_status_transitions "
                "where seq = 1 limit 1"
            )
            db.execute("update twice set seq = null")
            for _ in range(2):
                db.execute("insert into marts.fct_order_status_transitions select * from twice")
            assert failures(seq_test, *every) == {seq_test: 1}

            # without its index a duplicate key is found by grouping every row
            db.execute("drop index marts.guard_buyer_key")
            db.execute(
                f"update {buyers} set buyer_key = (select min(buyer_key) from {buyers}) "
                f"where buyer_key = (select max(buyer_key) from {buyers})"
            )
            assert failures(keys_test, *every) == {keys_test: 1}
            assert _table_reads(db, compiled(keys_test), "dim_buyers") > 0
    finally:
        drop_database(pg, conn)


def test_holographic_joins_the_merchant_records(built_warehouse: PgConn, world):
    rows = {
        (c, n): (tracks, tickets, pickup_failed, warehouse, status, source)
        for c, n, tracks, tickets, pickup_failed, warehouse, status, source in _rows(
            built_warehouse,
            "select channel, platform_order_no, track_events, cs_tickets, had_pickup_failure, "
            "warehouse_id, unified_status, status_source from marts.order_holographic",
        )
    }
    tracks: dict[tuple[str, str], int] = defaultdict(int)
    for event in world.tracking_events:
        tracks[event.channel, event.platform_order_no] += 1
    tickets: dict[tuple[str, str], int] = defaultdict(int)
    for ticket in world.cs_tickets:
        tickets[ticket.channel, ticket.platform_order_no] += 1
    failed = {(e.channel, e.platform_order_no) for e in world.tracking_events
              if e.status == "pickup_failed"}  # fmt: skip
    assert tracks and tickets and failed
    for order in world.orders:
        key = (order.channel, order.platform_order_no)
        n_tracks, n_tickets, pickup_failed, warehouse, _, _ = rows[key]
        assert (n_tracks, n_tickets, pickup_failed) == (tracks[key], tickets[key], key in failed)
        if tracks[key]:
            assert warehouse is not None, key
    # paid, unshipped orders the WMS is working on move past paid_pending_review
    latest_wms: dict[tuple[str, str], str] = {}
    for event in sorted(world.wms_events, key=lambda e: e.at):
        latest_wms[event.channel, event.platform_order_no] = event.type
    moved = [(rows[k][4], latest_wms[k]) for k in latest_wms if rows[k][5] == "wms"]
    implied = {"allocate": "allocated", "pick": "picking", "pack": "picking",
               "ship": "awaiting_pickup", "allocate_failed": "pending_allocation"}  # fmt: skip
    assert moved and all(status == implied[kind] for status, kind in moved)
    warehouses = _rows(built_warehouse, "select warehouse_id, is_front from marts.dim_warehouses")
    assert {w for w, _ in warehouses} == {w.warehouse_id for w in world.warehouses}
    assert sum(front for _, front in warehouses) == 1


@pytest.mark.slow
def _jd_lines(db: psycopg.Connection) -> dict[str, int]:
    """jd order number -> its lines in marts.fct_order_items."""
    return dict(
        db.execute(
            "select platform_order_no, count(*) from marts.fct_order_items "
            "where channel = 'jd' group by 1"
        ).fetchall()
    )


def test_orders_landing_between_the_two_dbt_ops_fail_no_test_and_are_not_lost(
    pg: PgConn, tmp_path: Path, first_build: PgConn
):
    """Dagster builds the project as two ops with the decisions between them (see
    orchestration/dbt/assets.py); orders loaded into raw in between must neither orphan their
    lines in fct_order_items (the item view reads raw live) nor be missed by the next build."""
    from orchestration.dbt.assets import AFTER_DECISIONS

    conn = _copy_of(pg, first_build)  # no jd order in it yet
    try:
        between = [o for o in orders_for(["jd"], 12) if o.channel == "jd"]
        # the next cycle: the first op, a push lands, then the second op
        run_dbt(conn, tmp_path, "build", "--exclude", AFTER_DECISIONS)
        with psycopg.connect(conn.url()) as db:
            load_sample_orders(db, between)
        run_dbt(conn, tmp_path, "build", "--select", AFTER_DECISIONS)  # tests included: pass
        # the cycle after: both ops again; the late orders arrive with all their lines
        run_dbt(conn, tmp_path, "build", "--exclude", AFTER_DECISIONS)
        run_dbt(conn, tmp_path, "build", "--select", AFTER_DECISIONS)
        with psycopg.connect(conn.url()) as db:
            lines = _jd_lines(db)
            incremental = _snapshot(db)
        assert set(lines) == {o.platform_order_no for o in between}
        assert all(lines[o.platform_order_no] == len(o.items) for o in between)
        _assert_a_full_refresh_gives(incremental, conn, tmp_path)
    finally:
        drop_database(pg, conn)


def test_order_lines_built_in_a_run_without_fct_orders_wait_for_their_order(
    pg: PgConn, tmp_path: Path, first_build: PgConn
):
    """Declarative automation builds the models whose inputs changed, so a run may rebuild
    int_orders and fct_order_items but not fct_orders (it waits on the decisions, seen in live
    mode): the new orders' lines must wait for their order (the parent test passes) and arrive
    with it when fct_orders is built."""
    from orchestration.dbt.assets import AFTER_DECISIONS

    conn = _copy_of(pg, first_build)  # no jd order in it yet
    try:
        new = [o for o in orders_for(["jd"], 12) if o.channel == "jd"]
        with psycopg.connect(conn.url()) as db:
            load_sample_orders(db, new)
        run_dbt(conn, tmp_path, "build", "--exclude", AFTER_DECISIONS)  # int_orders has them
        run_dbt(conn, tmp_path, "build", "--select", "fct_order_items")  # tests included: pass
        with psycopg.connect(conn.url()) as db:
            early = db.execute(
                "select count(*) from marts.fct_order_items where channel = 'jd'"
            ).fetchone()[0]
        run_dbt(conn, tmp_path, "build", "--select", AFTER_DECISIONS)
        with psycopg.connect(conn.url()) as db:
            lines = _jd_lines(db)
            incremental = _snapshot(db)
        assert early == 0
        assert set(lines) == {o.platform_order_no for o in new}
        assert all(lines[o.platform_order_no] == len(o.items) for o in new)
        _assert_a_full_refresh_gives(incremental, conn, tmp_path)
    finally:
        drop_database(pg, conn)


def test_the_current_statuses_have_an_index_the_stuck_count_can_read_alone(
    built_warehouse: PgConn,
):
    """order_health_checks' current statuses (order_health_daily's stuck orders) come from an
    index of the current statuses that holds every column they read (status, entry time, order
    key), not from the whole history; and the index has exactly the current rows."""
    ((definition,),) = _rows(
        built_warehouse,
        "select indexdef from pg_indexes where schemaname = 'marts' "
        "and tablename = 'fct_order_status_history' and indexname ^@ 'osh_current_status'",
    )
    definition = definition.lower()
    assert "(unified_status, entered_at) include (channel, platform_order_no)" in definition
    assert definition.endswith("where is_current")
    ((indexed, current),) = _rows(
        built_warehouse,
        "select (select reltuples::bigint from pg_class where relname = (select indexname "
        "from pg_indexes where indexname ^@ 'osh_current_status')), "
        "(select count(*) from marts.fct_order_status_history where is_current)",
    )
    assert indexed == current > 0


@pytest.mark.parametrize(
    ("table", "key", "prefix", "read"),
    [
        # fct_order_status_transitions: each changed order's events
        # ... and order_health_checks: each changed order's WMS ship events and their warehouse
        (
            "int_order_fulfillment_events",
            "channel, platform_order_no",
            "ofe_events_of_order",
            "unified_status, event_at, origin, event_type, warehouse_id",
        ),
        # fulfillment/risk_store.py: the candidates' cart actions, devices and IPs
        ("int_behaviour_events", "buyer_id, event_at", "ibe_buyer_events", "action, ip, device"),
    ],
)
def test_the_rows_of_an_order_or_buyer_are_read_from_the_index_alone(
    built_warehouse: PgConn, table: str, key: str, prefix: str, read: str
):
    """The rows of one order (one buyer) lie on as many heap pages as there are rows: the
    readers that look them up by key find every column they read in one index, so the lookup
    never visits the heap; and that index is the only one on the key (the plain key index it
    replaces would be upkeep for nothing)."""
    on_key = _rows(
        built_warehouse,
        "select indexname, indexdef from pg_indexes where schemaname = 'intermediate' "
        f"and tablename = '{table}' and indexdef like '%%({key})%%'",
    )
    assert [name[: len(prefix)] for name, _ in on_key] == [prefix]
    assert f"include ({read})" in on_key[0][1].lower()
    first = key.split(", ")[0]
    ((values),) = _rows(
        built_warehouse,
        f"select {key} from intermediate.{table} where {first} is not null limit 1",
    )
    where = " and ".join(f"{column} = %s" for column in key.split(", "))
    with psycopg.connect(built_warehouse.url()) as db:
        db.execute("set local enable_seqscan = off; set local enable_bitmapscan = off")
        plan = "\n".join(
            row[0]
            for row in db.execute(
                f"explain select {read} from intermediate.{table} where {where}", list(values)
            )
        )
    assert f"Index Only Scan using {prefix}" in plan, plan


@pytest.mark.slow
def test_a_warehouse_built_before_the_covering_indexes_loses_the_plain_ones_they_replace(
    tmp_path: Path, first_build_copy: PgConn
):
    """A warehouse built when the order's and the buyer's events had plain key indexes, and
    the order's events the narrower covering index `ofe_order_events`: the next incremental
    run drops those (the covering indexes serve every lookup by that key) and keeps the
    covering ones and the unique keys; the rows stay as they were."""
    conn = first_build_copy
    plain = {
        "int_order_fulfillment_events": "channel, platform_order_no",
        "int_behaviour_events": "buyer_id, event_at",
    }
    with psycopg.connect(conn.url(), autocommit=True) as db:
        db.execute(
            "create index ofe_order_events_123 on intermediate.int_order_fulfillment_events "
            "(channel, platform_order_no) include (unified_status, event_at, origin)"
        )
    listed = (
        "select tablename, indexname, indexdef from pg_indexes "
        "where schemaname = 'intermediate' and tablename in "
        "('int_order_fulfillment_events', 'int_behaviour_events') order by 1, 2"
    )
    rows = "select count(*), max(_written_xid) from intermediate.int_behaviour_events"
    with psycopg.connect(conn.url(), autocommit=True) as db:
        for table, key in plain.items():
            db.execute(f"create index old_{table} on intermediate.{table} ({key})")
        before = db.execute(listed).fetchall()
        kept = db.execute(rows).fetchone()
    replaced = {f"old_{t}" for t in plain} | {"ofe_order_events_123"}
    assert {name for _, name, _ in before} >= replaced
    run_dbt(conn, tmp_path, "run", "-s", "int_order_fulfillment_events int_behaviour_events")
    after = _rows(conn, listed)
    assert [i for i in before if i[1] not in replaced] == after
    assert _rows(conn, rows) == [kept]


@pytest.mark.slow
def test_the_statuses_of_an_order_are_found_by_its_key_alone(
    tmp_path: Path, first_build_copy: PgConn
):
    """`fct_order_status_history`'s rows of an order are deleted and read by the order's key:
    an index on the key alone, which B-tree deduplication keeps to one entry per order. A
    warehouse built with the (channel, platform_order_no, entered_at) index loses that one at
    its next build; the delete of a changed order's statuses probes the key index."""
    conn = first_build_copy
    listed = (
        "select indexname, indexdef from pg_indexes where schemaname = 'marts' "
        "and tablename = 'fct_order_status_history' order by 1"
    )
    built = _rows(conn, listed)
    with psycopg.connect(conn.url(), autocommit=True) as db:
        db.execute(
            "create index old_history_key on marts.fct_order_status_history "
            "(channel, platform_order_no, entered_at)"
        )
    run_dbt(conn, tmp_path, "run", "-s", "fct_order_status_history")
    after = _rows(conn, listed)
    assert after == built
    on_key = [n for n, d in after if d.endswith("USING btree (channel, platform_order_no)")]
    assert [n[: len("osh_order")] for n in on_key] == ["osh_order"]
    assert not [d for _, d in after if "(channel, platform_order_no, entered_at)" in d]
    with psycopg.connect(conn.url()) as db:
        db.execute("set local enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in db.execute(
                "explain delete from marts.fct_order_status_history "
                "where (channel, platform_order_no) in "
                "(select channel, platform_order_no from marts.fct_orders limit 10)"
            )
        )
    assert f"using {on_key[0]}" in plan or f"on {on_key[0]}" in plan, plan


def _wms_latest_indexes(conn: PgConn) -> list[tuple]:
    return _rows(
        conn,
        "select indexname, indexdef from pg_indexes where schemaname = 'intermediate' "
        "and tablename = 'int_order_fulfillment_events' and indexname ^@ 'ofe_wms_latest'",
    )


@pytest.mark.slow
def test_the_wms_latest_index_survives_a_full_refresh_and_reaches_an_older_table(
    pg: PgConn, tmp_path: Path, first_build: PgConn
):
    """The partial index the stock locks read (`ensured_indexes`): there after a build, there
    again after a full refresh (which builds the table anew beside the old one and its index),
    and made on a table built before the index existed, without a rebuild."""
    conn = _copy_of(pg, first_build)
    try:
        (index,) = _wms_latest_indexes(conn)
        assert "include (warehouse_id)" in index[1].lower()
        assert "where ((origin = 'wms'::text) and (warehouse_id is not null))" in index[1].lower()

        run_dbt(conn, tmp_path, "run", "--full-refresh", "-s", "int_order_fulfillment_events")
        assert len(_wms_latest_indexes(conn)) == 1

        # a warehouse from before the index: a plain incremental run adds it, rows untouched
        rows = "select count(*), max(_written_xid) from intermediate.int_order_fulfillment_events"
        with psycopg.connect(conn.url(), autocommit=True) as db:
            db.execute(f'drop index intermediate."{_wms_latest_indexes(conn)[0][0]}"')
            before = db.execute(rows).fetchone()
        run_dbt(conn, tmp_path, "run", "-s", "int_order_fulfillment_events")
        assert len(_wms_latest_indexes(conn)) == 1
        assert _rows(conn, rows)[0] == before
    finally:
        drop_database(pg, conn)
