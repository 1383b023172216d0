"""marts.order_health_daily on a real PostgreSQL after real dbt builds: a calm generated world
(no incidents) scores above 90 on every channel and day; then one crafted degradation per
sub-score, each on its own channel and Beijing day, lowers exactly that sub-score on exactly
that day and channel (every other score of every row stays as it was). Two dbt invocations
in all, without data tests: the calm world, then after the degradations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest

from kernel.database import PgConn
from orchestration.resources import ensure_owned_tables
from quality.health_index import SUB_SCORES, load_health_index, ohi
from sandbox.world import generate_world
from tests.dbt.conftest import drop_database, new_database, run_dbt
from tests.dbt.sample_raw import (
    END,
    available_channels,
    load_merchant_systems_records,
    load_sample_orders,
)

SCORES = ("ohi", *SUB_SCORES)
# the sub-score each crafted degradation must lower, and the channel it touches
TOUCHED = {
    "timeliness": "taobao",
    "completeness": "h5mall",
    "consistency": "jd",
    "accuracy": "douyin",
    "controllability": "pdd",
}
LOCAL_DAY = "(({col}) at time zone 'Asia/Shanghai')::date"

Table = dict[tuple[date, str], dict[str, Decimal | None]]


@dataclass
class Health:
    before: Table
    after: Table
    cells: dict[str, tuple[date, str]]  # sub-score -> (day, channel) degraded
    rows_degraded: dict[str, int]


def _table(db: psycopg.Connection) -> Table:
    cur = db.execute(f"select day, channel, {', '.join(SCORES)} from marts.order_health_daily")
    return {(r[0], r[1]): dict(zip(SCORES, r[2:], strict=True)) for r in cur.fetchall()}


# loaded in one go, as a demo world or a first sync is: history, not late changes
BACKFILLED = "youzan"


def _healthy(db: psycopg.Connection, channels: list[str]) -> None:
    """What a healthy day looks like: every change loaded two minutes after the platform made
    it (but BACKFILLED's, all loaded at once by its first sync), and every order the warehouse
    shipped routed to the warehouse that shipped it."""
    for channel in sorted(set(channels) - {BACKFILLED}):
        db.execute(
            f"update raw.{channel}_orders set loaded_at = source_modified_at + interval '2 min'"
        )
    db.execute(
        """
        insert into ops.routing_decisions
            (channel, platform_order_no, decision, warehouse_id, carrier, rule, decided_at)
        select distinct on (payload ->> 'channel', payload ->> 'platform_order_no')
            payload ->> 'channel', payload ->> 'platform_order_no', 'ship',
            payload ->> 'warehouse_id', 'SF', 'near_stock', (payload ->> 'at')::timestamptz
        from raw.wms_events
        where payload ->> 'type' = 'ship'
        order by payload ->> 'channel', payload ->> 'platform_order_no', payload ->> 'at'
        """
    )


def _busiest_day(db: psycopg.Connection, channel: str, where: str = "true") -> date:
    """The creation day of `channel` with the most orders matching `where`."""
    return db.execute(
        f"select {LOCAL_DAY.format(col='o.created_at')} as day from intermediate.int_orders o "
        f"where o.channel = %s and {where} group by 1 order by count(*) desc, 1 limit 1",
        [channel],
    ).fetchone()[0]


def _orders_of(db: psycopg.Connection, channel: str, day: date, where: str) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            f"select o.platform_order_no from intermediate.int_orders o where o.channel = %s "
            f"and {LOCAL_DAY.format(col='o.created_at')} = %s and {where} "
            "order by o.platform_order_no",
            [channel, day],
        )
    ]


ROUTED = (
    "exists (select 1 from ops.routing_decisions d where d.channel = o.channel "
    "and d.platform_order_no = o.platform_order_no)"
)


def _degrade(db: psycopg.Connection) -> tuple[dict[str, tuple[date, str]], dict[str, int]]:
    """One crafted incident per sub-score, each on its own (day, channel) cell."""
    cells: dict[str, tuple[date, str]] = {}
    rows: dict[str, int] = {}

    # timeliness: the changes of one day reached raw three hours late (a channel outage)
    channel = TOUCHED["timeliness"]
    day = db.execute(
        f"select {LOCAL_DAY.format(col='source_modified_at')} from raw.{channel}_orders "
        "group by 1 order by count(*) desc, 1 limit 1"
    ).fetchone()[0]
    rows["timeliness"] = db.execute(
        f"update raw.{channel}_orders set loaded_at = source_modified_at + interval '3 hours' "
        f"where {LOCAL_DAY.format(col='source_modified_at')} = %s",
        [day],
    ).rowcount
    cells["timeliness"] = (day, channel)

    # completeness: the shop id blanked on the orders created that day
    channel = TOUCHED["completeness"]
    day = _busiest_day(db, channel)
    orders = _orders_of(db, channel, day, "true")
    rows["completeness"] = db.execute(
        f"update raw.{channel}_orders set payload = jsonb_set(payload, '{{shop_id}}', '\" \"') "
        "where platform_order_no = any(%s)",
        [orders],
    ).rowcount
    cells["completeness"] = (day, channel)

    # consistency: the WMS ships orders the platform says were cancelled or never paid
    channel = TOUCHED["consistency"]
    unshippable = "o.platform_unified_status in ('closed', 'awaiting_payment')"
    day = _busiest_day(db, channel, unshippable)
    orders = _orders_of(db, channel, day, unshippable)
    with db.cursor().copy(
        "copy raw.wms_events (event_id, source_modified_at, payload, content_hash) from stdin"
    ) as copy:
        for k, order_no in enumerate(orders):
            at = (END - timedelta(hours=1)).isoformat()
            payload = {
                "event_id": f"WX{k:08d}", "at": at, "type": "ship", "channel": channel,
                "platform_order_no": order_no, "warehouse_id": "WH-EAST",
            }  # fmt: skip
            copy.write_row((payload["event_id"], at, json.dumps(payload), f"x{k}"))
    rows["consistency"] = len(orders)
    cells["consistency"] = (day, channel)

    # accuracy: decisions whose orders the warehouse shipped from elsewhere
    channel = TOUCHED["accuracy"]
    day = _busiest_day(db, channel, ROUTED)
    orders = _orders_of(db, channel, day, ROUTED)
    rows["accuracy"] = db.execute(
        "update ops.routing_decisions set warehouse_id = 'WH-NOWHERE' "
        "where channel = %s and platform_order_no = any(%s)",
        [channel, orders],
    ).rowcount
    cells["accuracy"] = (day, channel)

    # controllability: orders that needed a person (risk holds and a manual review); picked
    # among orders the platform has moved on, so their unified status stays what it was
    channel = TOUCHED["controllability"]
    moved_on = f"o.platform_unified_status <> 'paid_pending_review' and not {ROUTED}"
    day = _busiest_day(db, channel, moved_on)
    orders = _orders_of(db, channel, day, moved_on)
    held, reviewed = orders[:-1], orders[-1:]
    db.execute(
        "insert into ops.review_queue (channel, platform_order_no, score, hold_until) "
        "select %s, unnest(%s::text[]), 90, %s",
        [channel, held, END + timedelta(hours=72)],
    )
    db.execute(
        "insert into ops.routing_decisions (channel, platform_order_no, decision, rule, "
        "decided_at) select %s, unnest(%s::text[]), 'manual_review', 'freight_share', %s",
        [channel, reviewed, END],
    )
    rows["controllability"] = len(orders)
    cells["controllability"] = (day, channel)
    return cells, rows


@pytest.fixture(scope="module")
def health(pg: PgConn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Health]:
    conn = new_database(pg)
    target = tmp_path_factory.mktemp("dbt_health")
    channels = available_channels()
    world = generate_world(seed=11, orders=400, days=2, end=END, calm=True)
    try:
        with psycopg.connect(conn.url()) as db:
            load_sample_orders(db, [o for o in world.orders if o.channel in channels])
            load_merchant_systems_records(db, world)
            ensure_owned_tables(db)
            _healthy(db, channels)
        # only the seeds and models the mart is built from, no data tests: tests/dbt builds
        # the whole project with its data tests (this mart's included)
        only = ("--select", "+order_health_daily", "--indirect-selection", "empty")
        run_dbt(conn, target, "build", *only)
        with psycopg.connect(conn.url()) as db:
            before = _table(db)
            cells, rows = _degrade(db)
        # the degradations rewrite history (raw rows loaded hours late, stamped in the past):
        # incremental builds look for raw rows stamped since their last build, so rebuild
        run_dbt(conn, target, "run", "--full-refresh", *only)
        with psycopg.connect(conn.url()) as db:
            after = _table(db)
        yield Health(before, after, cells, rows)
    finally:
        drop_database(pg, conn)


@pytest.mark.slow
def test_a_calm_world_scores_above_90_on_every_channel_and_day(health: Health) -> None:
    assert {channel for _, channel in health.before} == set(available_channels())
    low = {key: row for key, row in health.before.items() if row["ohi"] <= 90}
    assert not low, f"healthy rows at or under 90: {low}"
    backfill = {k: r["timeliness"] for k, r in health.before.items() if k[1] == BACKFILLED}
    assert backfill and all(t in (100, None) for t in backfill.values()), backfill


@pytest.mark.slow
def test_the_ohi_is_the_configured_weighted_mean(health: Health) -> None:
    weights = load_health_index().weights
    for table in (health.before, health.after):
        for key, row in table.items():
            scores = {k: None if row[k] is None else float(row[k]) for k in SUB_SCORES}
            assert float(row["ohi"]) == pytest.approx(ohi(scores, weights), abs=0.01), key


def _lowers_exactly(health: Health, score: str) -> None:
    """`score` fell on its degraded cell, nothing else there moved, and no other cell's
    `score` moved."""
    cell = health.cells[score]
    assert health.rows_degraded[score] > 0, f"no order to degrade for {score}"
    before, after = health.before[cell], health.after[cell]
    assert after[score] < before[score], (cell, before, after)
    assert after["ohi"] < before["ohi"]
    assert {k: after[k] for k in SUB_SCORES if k != score} == {
        k: before[k] for k in SUB_SCORES if k != score
    }
    assert set(health.after) == set(health.before)
    moved = {
        key: (row[score], health.after[key][score])
        for key, row in health.before.items()
        if key != cell and health.after[key][score] != row[score]
    }
    assert not moved, f"{score} moved outside {cell}: {moved}"


@pytest.mark.slow
def test_late_loads_lower_timeliness(health: Health) -> None:
    _lowers_exactly(health, "timeliness")


@pytest.mark.slow
def test_blanked_fields_lower_completeness(health: Health) -> None:
    _lowers_exactly(health, "completeness")


@pytest.mark.slow
def test_a_warehouse_status_contradicting_the_platform_lowers_consistency(
    health: Health,
) -> None:
    _lowers_exactly(health, "consistency")


@pytest.mark.slow
def test_shipping_from_another_warehouse_lowers_accuracy(health: Health) -> None:
    _lowers_exactly(health, "accuracy")


@pytest.mark.slow
def test_holds_and_manual_reviews_lower_controllability(health: Health) -> None:
    _lowers_exactly(health, "controllability")
