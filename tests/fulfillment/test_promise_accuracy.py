"""Promise accuracy: stored promises against deliveries; the sandbox's played deliveries on the
model's clock (what the demo compares the promises with)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from fulfillment.promise_accuracy import score_promises
from sandbox.allocations import AllocationBook
from sandbox.world import generate_world

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _promises(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(order no, carrier, promised hours after T0)."""
    return pd.DataFrame(
        {
            "channel": "taobao",
            "platform_order_no": [r[0] for r in rows],
            "warehouse_id": "WH-EAST",
            "carrier": [r[1] for r in rows],
            "promised_delivery_at": [T0 + timedelta(hours=r[2]) for r in rows],
        }
    )


def test_share_on_time_and_mean_slack() -> None:
    promises = _promises([("a", "SF", 48), ("b", "SF", 48), ("c", "SF", 48), ("d", "SF", 48),
                          ("e", "SF", 48)])  # fmt: skip
    deliveries = pd.DataFrame(
        {
            "channel": "taobao",
            "platform_order_no": ["a", "b", "c", "e", "zz"],
            "warehouse_id": "WH-EAST",
            "carrier": ["SF", "SF", "SF", "ZTO", "SF"],  # e: another allocation's delivery
            # ISO strings with an offset, as the sandbox's truth carries them
            "delivered_at": [
                (T0 + timedelta(hours=h)).astimezone().isoformat() for h in (24, 36, 60, 10, 1)
            ],
        }
    )
    acc = score_promises(promises, deliveries)
    assert acc.orders == 3
    assert acc.undelivered == 2  # d never delivered, e delivered for another decision
    assert acc.on_time_share == pytest.approx(2 / 3)
    assert acc.mean_slack_days == pytest.approx((1.0 + 0.5 - 0.5) / 3)
    assert acc.sentence() == "promise: 66.7% of 3 delivered by the promised time, mean slack 0.33 d"
    none = score_promises(promises, deliveries.iloc[:0])
    assert none.orders == 0
    assert none.sentence() == "promise: no delivery to compare yet (5 promises open)"


def test_played_deliveries_on_the_model_clock_score_the_promises() -> None:
    world = generate_world(seed=9, orders=300, end=T0)
    shipped = {(s.channel, s.platform_order_no) for s in world.shipments}
    open_orders = [
        o
        for o in world.orders
        if o.paid_at is not None
        and o.channel != "pos"
        and o.country == "CN"
        and not {e.type for e in o.events} & {"ship", "cancel", "refund"}
        and (o.channel, o.platform_order_no) not in shipped
    ][:6]
    assert len(open_orders) == 6
    now = T0 + timedelta(minutes=5)
    book = AllocationBook(world, clock=lambda: now, time_scale=60)
    answer = book.submit(
        [
            {"channel": o.channel, "platform_order_no": o.platform_order_no,
             "warehouse_id": "WH-EAST", "carrier": "SF", "decided_at": now.isoformat()}
            for o in open_orders
        ]
    )  # fmt: skip
    assert answer["accepted"] == 6
    played = pd.DataFrame(book.deliveries())
    live = pd.to_datetime(played["delivered_at"], utc=True)
    model = pd.to_datetime(played["delivered_at_model"], utc=True)
    # a model hour is a live minute: the model's delivery is 60 × as far from the allocation
    ratio = (model - now).dt.total_seconds() / (live - now).dt.total_seconds()
    assert ratio.tolist() == pytest.approx([60.0] * 6, abs=0.01)
    assert ((model - now) > timedelta(hours=12)).all()  # days of model time, not minutes
    # promises an hour after the model's delivery for half, an hour before for the others
    promises = played[["channel", "platform_order_no", "warehouse_id", "carrier"]].assign(
        promised_delivery_at=model + pd.to_timedelta([1, -1] * 3, unit="h")
    )
    acc = score_promises(
        promises,
        played.drop(columns="delivered_at").rename(columns={"delivered_at_model": "delivered_at"}),
    )
    assert (acc.orders, acc.on_time_share) == (6, 0.5)
    assert acc.mean_slack_days == pytest.approx(0.0, abs=1e-6)


def test_read_promises_takes_shipped_main_parts_with_a_promise(fresh_db) -> None:
    import psycopg

    from fulfillment.ops_schema import ensure_ops_tables
    from fulfillment.promise_accuracy import read_promises

    rows = [  # (no, part, decision, promised hours after T0 or None)
        ("a", 0, "ship", 30.0),
        ("b", 0, "split", 40.0),
        ("b", 1, "split", 50.0),  # a split's other part: the main part carries the promise
        ("c", 0, "manual_review", None),
        ("d", 0, "ship", None),
    ]
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_ops_tables(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ops.routing_decisions (channel, platform_order_no, part, decision, "
                "warehouse_id, carrier, decided_at, promised_delivery_at) "
                "values ('jd', %s, %s, %s, 'WH-EAST', 'JD', %s, %s)",
                [
                    (no, part, d, T0, None if h is None else T0 + timedelta(hours=h))
                    for no, part, d, h in rows
                ],
            )
        promises = read_promises(conn)
    assert sorted(promises["platform_order_no"]) == ["a", "b"]
    deliveries = pd.DataFrame(
        {
            "channel": "jd",
            "platform_order_no": ["a", "b"],
            "warehouse_id": "WH-EAST",
            "carrier": "JD",
            "delivered_at": [T0 + timedelta(hours=36), T0 + timedelta(hours=36)],
        }
    )
    acc = score_promises(promises, deliveries)
    assert (acc.orders, acc.on_time_share) == (2, 0.5)
    assert acc.mean_slack_days == pytest.approx((-6 + 4) / 2 / 24)
