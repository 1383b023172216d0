"""Inventory locks and pause-sale on a real PostgreSQL (a fresh database with hand-built minimal
intermediate/staging tables): lock on payment, release on cancel, refund before shipment and
hold expiry, idempotent re-runs, two concurrent runs never lock one unit twice, pause-sale lifted
on restock."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from fulfillment import inventory_store
from fulfillment.inventory_rules import InventoryRules
from fulfillment.inventory_store import sync_inventory_locks, sync_pause_sale
from fulfillment.ops_schema import ensure_ops_tables
from kernel.database import PgConn

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
RULES = InventoryRules()

TABLES = """
create table intermediate.int_orders (
    channel text, platform_order_no text, paid_at timestamptz, created_at timestamptz,
    has_cancel boolean, has_refund boolean, has_ship boolean, platform_unified_status text,
    refund_status text, receiver_phone text, receiver_address text, buyer_note text);
create table intermediate.int_order_items (
    channel text, platform_order_no text, sku text, qty integer);
create table intermediate.int_order_fulfillment_status (
    channel text, platform_order_no text, fulfillment_status text);
create table intermediate.int_order_fulfillment_events (
    channel text, platform_order_no text, origin text, event_at timestamptz, warehouse_id text);
create table staging.stg_merchant_systems__wms_stock (
    warehouse_id text, sku text, on_hand integer, last_sync_at timestamptz);
"""


# dbt's bookkeeping column on the intermediate tables, set on every insert and update as
# dbt's merge and delete+insert set it: with it a pass reads only the orders touched since
# the last; without it (tables another tool built) every pass reads every order
WRITTEN_XID = """
create function intermediate.stamp_written_xid() returns trigger language plpgsql as $$
begin
    new._written_xid := pg_current_xact_id()::text::bigint;
    return new;
end $$;
""" + "".join(
    f"""
alter table intermediate.{t} add column _written_xid bigint;
create trigger stamp before insert or update on intermediate.{t}
    for each row execute function intermediate.stamp_written_xid();
"""
    for t in (
        "int_orders", "int_order_items", "int_order_fulfillment_status",
        "int_order_fulfillment_events",
    )
)  # fmt: skip


def make_tables(c: psycopg.Connection, written_xid: bool) -> None:
    c.execute(TABLES)
    if written_xid:
        c.execute(WRITTEN_XID)
    ensure_ops_tables(c)


@pytest.fixture(params=["touched", "whole"])
def conn(fresh_db: PgConn, request: pytest.FixtureRequest) -> Iterator[psycopg.Connection]:
    """Every test twice: passes after the first reading only the touched orders, and passes
    that read every order."""
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        make_tables(c, written_xid=request.param == "touched")
        yield c


def paid(c: psycopg.Connection, no: str, items: dict[str, int], minutes: int = 0,
         channel: str = "tmall") -> None:  # fmt: skip
    c.execute(
        "insert into intermediate.int_orders (channel, platform_order_no, paid_at, has_cancel, "
        "has_refund, has_ship) values (%s, %s, %s, false, false, false)",
        [channel, no, NOW - timedelta(hours=2) + timedelta(minutes=minutes)],
    )
    for sku, qty in items.items():
        c.execute(
            "insert into intermediate.int_order_items values (%s, %s, %s, %s)",
            [channel, no, sku, qty],
        )


def stock(c: psycopg.Connection, wid: str, sku: str, on_hand: int, minutes: int = 0) -> None:
    c.execute(
        "insert into staging.stg_merchant_systems__wms_stock values (%s, %s, %s, %s)",
        [wid, sku, on_hand, NOW - timedelta(minutes=30 - minutes)],
    )


def route(c: psycopg.Connection, no: str, wid: str) -> None:
    c.execute(
        "insert into ops.routing_decisions (channel, platform_order_no, part, decision, "
        "warehouse_id) values ('tmall', %s, 0, 'ship', %s)",
        [no, wid],
    )


def locks(c: psycopg.Connection) -> dict[str, tuple]:
    rows = c.execute(
        "select platform_order_no, sku, warehouse_id, qty, state, release_reason "
        "from ops.inventory_locks order by 1, 2"
    ).fetchall()
    return {f"{r[0]}:{r[1]}": r[2:] for r in rows}


def snapshot(c: psycopg.Connection) -> list[tuple]:
    return c.execute("select * from ops.inventory_locks order by 1, 2, 3, 4").fetchall()


def test_lock_on_payment_at_the_routed_warehouse_and_oversold(conn: psycopg.Connection) -> None:
    stock(conn, "SH", "A", 3)
    stock(conn, "BJ", "A", 10)
    paid(conn, "1", {"A": 2}, minutes=0)
    paid(conn, "2", {"A": 2}, minutes=5)
    route(conn, "1", "SH")
    route(conn, "2", "SH")
    report = sync_inventory_locks(conn, RULES, NOW)
    assert locks(conn) == {
        "1:A": ("SH", 2, "locked", None),
        "2:A": ("SH", 2, "oversold", None),
    }
    assert (report.locked, report.oversold, report.oversold_orders) == (1, 1, 1)
    # a re-run with the same inputs changes nothing, not even a timestamp
    before = snapshot(conn)
    again = sync_inventory_locks(conn, RULES, NOW + timedelta(minutes=10))
    assert snapshot(conn) == before and again.written == 0
    # restock: the waiting order locks
    stock(conn, "SH", "A", 4, minutes=5)
    sync_inventory_locks(conn, RULES, NOW + timedelta(minutes=20))
    assert locks(conn)["2:A"] == ("SH", 2, "locked", None)


def test_before_routing_locks_provisionally_then_moves_to_the_wms_warehouse(
    conn: psycopg.Connection,
) -> None:
    stock(conn, "SH", "A", 3)
    stock(conn, "BJ", "A", 10)
    paid(conn, "1", {"A": 1})
    sync_inventory_locks(conn, RULES, NOW)
    assert locks(conn) == {"1:A": ("BJ", 1, "locked", None)}
    conn.execute(
        "insert into intermediate.int_order_fulfillment_events values "
        "('tmall', '1', 'wms', %s, 'SH')",
        [NOW],
    )
    sync_inventory_locks(conn, RULES, NOW)
    assert locks(conn) == {"1:A": ("SH", 1, "locked", None)}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("update intermediate.int_orders set has_cancel = true", "cancelled"),
        ("update intermediate.int_orders set has_refund = true", "refunded"),
        (
            "insert into intermediate.int_order_fulfillment_status values "
            "('tmall', '1', 'in_transit')",
            "shipped",
        ),  # fmt: skip
        (
            "insert into ops.review_queue (channel, platform_order_no, score, hold_until) values "
            "('tmall', '1', 90, '2026-12-04 11:00+00')",
            "hold_expired",
        ),  # fmt: skip
        (
            "insert into ops.review_queue "
            "(channel, platform_order_no, score, hold_until, decision) "
            "values ('tmall', '1', 90, '2026-12-04 11:00+00', 'intercept')",
            "intercepted",
        ),
    ],
)
def test_release(conn: psycopg.Connection, change: str, reason: str) -> None:
    stock(conn, "SH", "A", 1)
    paid(conn, "1", {"A": 1})
    paid(conn, "2", {"A": 1}, minutes=5)
    sync_inventory_locks(conn, RULES, NOW)
    assert locks(conn)["2:A"][2] == "oversold"
    conn.execute(change + (" where platform_order_no = '1'" if change.startswith("update") else ""))
    report = sync_inventory_locks(conn, RULES, NOW)
    assert locks(conn)["1:A"] == ("SH", 1, "released", reason)
    assert report.released == {reason: 1}
    assert locks(conn)["2:A"][2] == "locked"  # the freed unit goes to the waiting order
    before = snapshot(conn)
    sync_inventory_locks(conn, RULES, NOW + timedelta(minutes=1))
    assert snapshot(conn) == before


def test_a_hold_still_running_or_released_by_a_reviewer_keeps_the_lock(
    conn: psycopg.Connection,
) -> None:
    stock(conn, "SH", "A", 5)
    paid(conn, "1", {"A": 1})
    paid(conn, "2", {"A": 1})
    conn.execute(
        "insert into ops.review_queue (channel, platform_order_no, hold_until, decision) values "
        "('tmall', '1', %s, null), ('tmall', '2', %s, 'release')",
        [NOW + timedelta(hours=70), NOW - timedelta(hours=1)],
    )
    sync_inventory_locks(conn, RULES, NOW)
    assert {k: v[2] for k, v in locks(conn).items()} == {"1:A": "locked", "2:A": "locked"}


def test_pos_orders_never_lock(conn: psycopg.Connection) -> None:
    stock(conn, "SH", "A", 5)
    paid(conn, "1", {"A": 1}, channel="pos")
    sync_inventory_locks(conn, RULES, NOW)
    assert locks(conn) == {}


def test_two_concurrent_runs_never_lock_one_unit_twice(fresh_db: PgConn) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        c.execute(TABLES)
        ensure_ops_tables(c)
        for sku in ("A", "B"):
            stock(c, "SH", sku, 7)
        for i in range(40):
            paid(c, f"o{i:02d}", {"A": 1 + i % 2, "B": 1}, minutes=i)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with psycopg.connect(fresh_db.url()) as c:
                barrier.wait()
                sync_inventory_locks(c, RULES, NOW + timedelta(seconds=i))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with psycopg.connect(fresh_db.url()) as c:
        rows = c.execute(
            "select sku, sum(qty) filter (where state = 'locked'), count(*), "
            "count(distinct platform_order_no) from ops.inventory_locks group by sku order by 1"
        ).fetchall()
    # 7 units each: A (1, 2, 1, ... first paid first) fits o00..o04 = 1+2+1+2+1; B 7 orders
    assert rows == [("A", 7, 40, 40), ("B", 7, 40, 40)]


def test_pause_sale_added_and_lifted_on_restock(conn: psycopg.Connection) -> None:
    stock(conn, "SH", "A", 6)
    stock(conn, "SH", "B", 50)
    paid(conn, "1", {"A": 2})
    sync_inventory_locks(conn, RULES, NOW)
    report = sync_pause_sale(conn, RULES, NOW)
    assert report.added == ["A"]
    row = conn.execute(
        "select sku, reason, since, sellable, threshold from ops.pause_sale"
    ).fetchall()
    assert row == [("A", "sellable stock 4 under the safety threshold 5", NOW, 4, 5)]
    again = sync_pause_sale(conn, RULES, NOW + timedelta(hours=1))
    assert again.added == [] and again.paused == 1
    assert conn.execute("select since from ops.pause_sale").fetchone()[0] == NOW
    stock(conn, "SH", "A", 30, minutes=5)
    lifted = sync_pause_sale(conn, RULES, NOW + timedelta(hours=2))
    assert lifted.lifted == ["A"]
    assert conn.execute("select count(*) from ops.pause_sale").fetchone()[0] == 0


LOCK_COLUMNS = (
    "channel, platform_order_no, sku, warehouse_id, qty, state, basis, paid_at, locked_at, "
    "released_at, release_reason, updated_at"
)


def lock_rows(c: psycopg.Connection) -> list[tuple]:
    return c.execute(
        f"select {LOCK_COLUMNS} from ops.inventory_locks order by 1, 2, 3, 4"
    ).fetchall()


def add_lines(c: psycopg.Connection, rng: random.Random, no: str, count: int) -> None:
    """`count` lines of distinct random SKUs, 1-3 units each, on order `no`."""
    for sku in rng.sample("ABCD", count):
        c.execute(
            "insert into intermediate.int_order_items "
            "select channel, platform_order_no, %s, %s from intermediate.int_orders "
            "where platform_order_no = %s",
            [sku, rng.randint(1, 3), no],
        )


def random_change(c: psycopg.Connection, rng: random.Random, step: int, now: datetime) -> str:
    """One change of the kinds a cycle brings, on a random order; what it was."""
    orders = [r[0] for r in c.execute("select platform_order_no from intermediate.int_orders")]
    no = rng.choice(orders) if orders else None
    kind = rng.choice(
        ["paid", "paid", "paid", "future", "cancel", "refund", "ship", "wms", "route", "split",
         "manual", "hold", "release", "intercept", "stock", "lines"]
    )  # fmt: skip
    if kind in ("paid", "future") or no is None:
        no = f"n{len(orders):03d}"
        minutes = rng.randint(-120, -1) if kind == "paid" else rng.randint(1, 20)
        c.execute(
            "insert into intermediate.int_orders (channel, platform_order_no, paid_at, "
            "has_cancel, has_refund, has_ship) values (%s, %s, %s, false, false, false)",
            [rng.choice(["tmall", "tmall", "jd", "pos"]), no, now + timedelta(minutes=minutes)],
        )
        add_lines(c, rng, no, rng.randint(1, 3))
    elif kind in ("cancel", "refund"):
        c.execute(
            f"update intermediate.int_orders set has_{kind} = true where platform_order_no = %s",
            [no],
        )
    elif kind == "ship":
        c.execute(
            "insert into intermediate.int_order_fulfillment_status "
            "select channel, platform_order_no, 'in_transit' from intermediate.int_orders "
            "where platform_order_no = %s",
            [no],
        )
    elif kind == "wms":
        c.execute(
            "insert into intermediate.int_order_fulfillment_events "
            "select channel, platform_order_no, 'wms', %s, %s from intermediate.int_orders "
            "where platform_order_no = %s",
            [now, rng.choice(["SH", "BJ", "GZ"]), no],
        )
    elif kind in ("route", "split", "manual"):
        decision = {"route": "ship", "split": "split", "manual": "manual_review"}[kind]
        inputs = (
            Jsonb({"parts": [{"warehouse_id": "GZ", "skus": ["A", "B"]}]})
            if kind == "split" else None
        )  # fmt: skip
        c.execute(
            "insert into ops.routing_decisions (channel, platform_order_no, part, decision, "
            "warehouse_id, inputs) select channel, platform_order_no, 0, %s, %s, %s "
            "from intermediate.int_orders where platform_order_no = %s "
            "on conflict (channel, platform_order_no, part) do update set "
            "decision = excluded.decision, warehouse_id = excluded.warehouse_id, "
            "inputs = excluded.inputs",
            [decision, rng.choice(["SH", "BJ"]), inputs, no],
        )
    elif kind in ("hold", "release", "intercept"):
        decision = {"hold": None, "release": "release", "intercept": "intercept"}[kind]
        c.execute(
            "insert into ops.review_queue (channel, platform_order_no, hold_until, decision) "
            "select channel, platform_order_no, %s, %s from intermediate.int_orders "
            "where platform_order_no = %s on conflict (channel, platform_order_no) do update "
            "set hold_until = excluded.hold_until, decision = excluded.decision",
            [now + timedelta(minutes=rng.randint(1, 15)), decision, no],
        )
    elif kind == "stock":
        stock(c, rng.choice(["SH", "BJ", "GZ"]), rng.choice("ABCD"), rng.randint(0, 8), step)
    else:  # the order's lines rebuilt, as dbt rebuilds them: with the order's row
        c.execute(
            "update intermediate.int_orders set paid_at = paid_at where platform_order_no = %s",
            [no],
        )
        c.execute("delete from intermediate.int_order_items where platform_order_no = %s", [no])
        add_lines(c, rng, no, rng.randint(0, 2))
    return f"{kind} {no}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_passes_of_touched_orders_lock_as_passes_of_every_order(
    fresh_db: PgConn, seed: int
) -> None:
    """After each random change, a pass reading only the touched orders leaves the locks
    exactly as a pass reading every order would have (that one run and rolled back)."""
    rng = random.Random(seed)
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        make_tables(c, written_xid=True)
        for sku in "ABCD":
            stock(c, "SH", sku, 6)
            stock(c, "BJ", sku, 4)
        now = NOW
        sync_inventory_locks(c, RULES, now)
        incremental = 0
        for step in range(30):
            changes = [random_change(c, rng, step, now) for _ in range(rng.randint(1, 3))]
            now += timedelta(seconds=rng.choice([0, 30, 90, 240]))
            with c.transaction(force_rollback=True):
                sync_inventory_locks(c, RULES, now, whole=True)
                expected = lock_rows(c)
            report = sync_inventory_locks(c, RULES, now)
            assert lock_rows(c) == expected, (step, changes, report.whole_because)
            incremental += report.whole_because is None
        assert lock_rows(c), "the scenario locked nothing"
    # most passes read the touched orders only (a future payment falling due reads all)
    assert incremental >= 22


def test_a_pass_reads_every_order_when_told_to_or_when_it_must(
    fresh_db: PgConn, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        make_tables(c, written_xid=True)
        stock(c, "SH", "A", 5)
        paid(c, "1", {"A": 1})
        assert sync_inventory_locks(c, RULES, NOW).whole_because == "first pass"
        paid(c, "2", {"A": 1})
        report = sync_inventory_locks(c, RULES, NOW)
        assert (report.whole_because, report.touched_orders) == (None, 1)
        # many touched orders: one read of every order costs less than a probe each
        monkeypatch.setattr(inventory_store, "FULL_FROM_TOUCHED", 1)
        paid(c, "4", {"A": 1})
        paid(c, "5", {"A": 1})
        assert sync_inventory_locks(c, RULES, NOW).whole_because == "2 orders touched"
        monkeypatch.undo()
        assert sync_inventory_locks(c, RULES, NOW, whole=True).whole_because == "asked"
        other = InventoryRules(locks={"exclude_channels": ["pos", "jd"]})
        assert sync_inventory_locks(c, other, NOW).whole_because == "lock settings changed"
        assert sync_inventory_locks(c, other, NOW - timedelta(seconds=1)).whole_because == (
            "clock went back"
        )
        later = NOW + timedelta(hours=1)
        assert sync_inventory_locks(c, other, later).whole_because == "hourly whole read"
        # paid "in the future": not open yet, and the pass that finds it due reads all
        c.execute(
            "insert into intermediate.int_orders (channel, platform_order_no, paid_at, "
            "has_cancel, has_refund, has_ship) values ('tmall', '3', %s, false, false, false)",
            [later + timedelta(minutes=5)],
        )
        c.execute("insert into intermediate.int_order_items values ('tmall', '3', 'A', 1)")
        report = sync_inventory_locks(c, other, later + timedelta(minutes=1))
        assert report.whole_because is None and "tmall:3" not in {
            f"tmall:{k.split(':')[0]}" for k in locks(c)
        }
        report = sync_inventory_locks(c, other, later + timedelta(minutes=6))
        assert report.whole_because == "an order paid in the future is due"
        assert locks(c)["3:A"][2] == "locked"
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        c.execute("alter table intermediate.int_order_items drop column _written_xid cascade")
        report = sync_inventory_locks(c, other, later + timedelta(minutes=7))
        assert report.whole_because == "inputs without _written_xid"
