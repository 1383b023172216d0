"""The reconciliation every fault test ends with: raw holds each order of the sandbox's truth
exactly once, in its latest version (status and paid amount as the truth says), and nothing
else; after a dbt build, so do `intermediate.int_orders` and `marts.fct_orders`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import psycopg

Reader = Callable[[dict[str, Any]], tuple[str, Decimal]]


def truth_of(rows: Iterable[dict], channel: str) -> dict[str, dict]:
    """The truth's orders of one channel by order number."""
    return {r["platform_order_no"]: r for r in rows if r["channel"] == channel}


def assert_raw_equals_truth(
    conn: psycopg.Connection, channel: str, truth: dict[str, dict], read: Reader
) -> int:
    """Every order once, none extra, each in the truth's latest version; returns the count."""
    rows = conn.execute(f"select platform_order_no, payload from raw.{channel}_orders").fetchall()
    numbers = [no for no, _ in rows]
    twice = sorted(no for no, n in Counter(numbers).items() if n > 1)
    assert not twice, f"{channel}: stored twice: {twice[:5]}"
    missing, extra = set(truth) - set(numbers), set(numbers) - set(truth)
    assert not missing and not extra, (
        f"{channel}: {len(missing)} missing, e.g. {sorted(missing)[:5]}; "
        f"{len(extra)} not in the truth, e.g. {sorted(extra)[:5]}"
    )
    stale = []
    for no, payload in rows:
        status, paid = read(payload)
        want = truth[no]
        if (status, paid) != (want["status"], Decimal(want["paid_amount"])):
            stale.append((no, status, str(paid), want["status"], want["paid_amount"]))
    assert not stale, f"{channel}: {len(stale)} orders not in their latest version: {stale[:3]}"
    return len(rows)


# statuses the platform alone decides; a paid, unshipped order's status also depends on
# OrderPulse's decisions and the warehouse (tests/dbt/test_dbt_build.py checks the same)
PLATFORM_DETERMINED = {"awaiting_payment", "in_transit", "delivered", "after_sale", "closed"}
_BOOKKEEPING = ("_built_at", "_built_xid", "_written_xid")


def _keys_once(conn: psycopg.Connection, relation: str, truth: set[tuple[str, str]]) -> None:
    keys = conn.execute(f"select channel, platform_order_no from {relation}").fetchall()
    twice = sorted(k for k, n in Counter(keys).items() if n > 1)
    assert not twice, f"{relation}: stored twice: {twice[:5]}"
    missing, extra = truth - set(keys), set(keys) - truth
    assert not missing and not extra, (
        f"{relation}: {len(missing)} missing, e.g. {sorted(missing)[:5]}; "
        f"{len(extra)} not in the truth, e.g. {sorted(extra)[:5]}"
    )


def assert_marts_equal_truth(conn: psycopg.Connection, *loads: Iterable[Any]) -> int:
    """After dbt builds over raw loaded with `loads` (sandbox Orders, later loads newer):
    every order once in `intermediate.int_orders` and `marts.fct_orders`, none extra;
    int_orders equal to its source view (what a full rebuild would store); fct_orders with the
    truth's paid amount and goods value, the truth's status where the platform decides it, and
    the status and amounts its upstream computes now (what a clean build writes). Returns the
    number of orders."""
    latest = {(o.channel, o.platform_order_no): o.truth() for load in loads for o in load}
    _keys_once(conn, "intermediate.int_orders", set(latest))
    _keys_once(conn, "marts.fct_orders", set(latest))

    columns = [
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns where table_schema ="
            " 'intermediate' and table_name = 'int_orders' order by ordinal_position"
        ).fetchall()
        if name not in _BOOKKEEPING
    ]
    listed = ", ".join(f'"{c}"' for c in columns)
    differ = conn.execute(
        f"select count(*) from ((select r::text from (select {listed} from intermediate.int_orders)"
        f" r except select r::text from (select {listed} from"
        f" intermediate.int_order_platform_status) r) union all (select r::text from (select"
        f" {listed} from intermediate.int_order_platform_status) r except select r::text from"
        f" (select {listed} from intermediate.int_orders) r)) d"
    ).fetchone()[0]
    assert differ == 0, f"int_orders differs from a rebuild in {differ} rows"

    rows = conn.execute(
        "select f.channel, f.platform_order_no, f.unified_status, f.goods_value, f.paid_amount,"
        " s.unified_status, s.paid_amount from marts.fct_orders f"
        " join intermediate.int_order_status s using (channel, platform_order_no)"
    ).fetchall()
    assert len(rows) == len(latest)
    wrong = []
    for channel, no, status, goods, paid, upstream_status, upstream_paid in rows:
        want = latest[channel, no]
        if (str(goods), str(paid)) != (want["goods_value"], want["paid_amount"]):
            wrong.append((channel, no, "amounts", str(goods), str(paid), want["paid_amount"]))
        if want["status"] in PLATFORM_DETERMINED and status != want["status"]:
            wrong.append((channel, no, "status", status, want["status"]))
        if (status, paid) != (upstream_status, upstream_paid):
            wrong.append((channel, no, "stale", status, upstream_status))
    assert not wrong, f"{len(wrong)} orders of fct_orders not as the truth says: {wrong[:3]}"
    # every status the platform decides was really compared
    assert {t["status"] for t in latest.values()} >= PLATFORM_DETERMINED
    return len(rows)
