"""Merge candidates: same phone + address within the window, across channels; exclusions
(cash on delivery, pre-sale, refunded, cancelled, held); the warehouse step is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from fulfillment.inventory_rules import InventoryRules
from fulfillment.merges import find_merge_candidates, write_merge_candidates
from fulfillment.ops_schema import ensure_ops_tables
from kernel.database import PgConn
from sandbox.world import generate_world
from tests.fulfillment.test_inventory_store import TABLES

T0 = datetime(2026, 12, 4, 8, tzinfo=UTC)


def order(no: str, minutes: float, channel: str = "tmall", phone: str = "138 0000 1111",
          address: str = "上海市 徐汇区 漕溪北路 1 号", **flags: bool) -> dict:  # fmt: skip
    return {
        "channel": channel,
        "platform_order_no": no,
        "receiver_phone": phone,
        "receiver_address": address,
        "created_at": T0 + timedelta(minutes=minutes),
        **flags,
    }


def groups(frame: pd.DataFrame) -> list[set[str]]:
    return sorted((set(g["platform_order_no"]) for _, g in frame.groupby("group_id")), key=sorted)


def test_same_household_within_30_minutes_across_channels() -> None:
    found = find_merge_candidates(
        pd.DataFrame(
            [
                order("a", 0, "tmall"),
                order("b", 20, "jd", phone="13800001111", address="上海市徐汇区漕溪北路1号"),
                order("c", 95, "douyin"),  # 75 min after b: a new chain, alone
                order("d", 5, phone="13900002222"),  # another phone
                order("e", 6, address="北京市朝阳区"),  # another address
            ]
        )
    )
    assert groups(found) == [{"a", "b"}]
    assert "2 orders within 20.0 min (jd,tmall)" in found["reason"].iloc[0]


@pytest.mark.parametrize("flag", ["is_cod", "is_presale", "is_refunded", "is_cancelled", "is_held"])
def test_excluded_orders_never_merge(flag: str) -> None:
    frame = pd.DataFrame([order("a", 0), order("b", 10, **{flag: True})])
    assert find_merge_candidates(frame).empty
    three = pd.DataFrame([order("a", 0), order("b", 10, **{flag: True}), order("c", 12)])
    assert groups(find_merge_candidates(three)) == [{"a", "c"}]


def test_store_sales_never_merge_with_parcels() -> None:
    # a POS sale 10 min before an online order of the same household: taken over the counter
    frame = pd.DataFrame([order("a", 0, "pos"), order("b", 10, "taobao"), order("c", 15, "jd")])
    assert groups(find_merge_candidates(frame)) == [{"b", "c"}]
    assert groups(find_merge_candidates(frame, exclude_channels=())) == [{"a", "b", "c"}]


def test_missing_phone_or_address_never_merges() -> None:
    frame = pd.DataFrame([order("a", 0, phone=None), order("b", 1, phone=None)])
    assert find_merge_candidates(frame).empty


def test_warehouse_step_writes_and_is_idempotent(fresh_db: PgConn) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        c.execute(TABLES)
        ensure_ops_tables(c)
        for no, ch, m, refund in [("1", "tmall", 0, False), ("2", "jd", 10, False),
                                  ("3", "pdd", 12, True)]:  # fmt: skip
            c.execute(
                "insert into intermediate.int_orders (channel, platform_order_no, created_at, "
                "has_cancel, has_refund, receiver_phone, receiver_address) "
                "values (%s, %s, %s, false, %s, '13800001111', '上海市徐汇区1号')",
                [ch, no, T0 + timedelta(minutes=m), refund],
            )
        report = write_merge_candidates(c, InventoryRules(), T0 + timedelta(hours=1))
        assert (report.groups, report.cross_channel_groups, report.orders) == (1, 1, 2)
        before = c.execute("select * from ops.merge_candidates order by 2, 3").fetchall()
        assert [r[1:3] for r in before] == [("jd", "2"), ("tmall", "1")]
        again = write_merge_candidates(c, InventoryRules(), T0 + timedelta(hours=2))
        assert again.written == 0 and again.removed == 0
        assert c.execute("select * from ops.merge_candidates order by 2, 3").fetchall() == before
        # a cancelled order leaves its group, and the group dissolves
        c.execute(
            "update intermediate.int_orders set has_cancel = true where platform_order_no = '2'"
        )
        gone = write_merge_candidates(c, InventoryRules(), T0 + timedelta(hours=3))
        assert gone.removed == 2
        assert c.execute("select count(*) from ops.merge_candidates").fetchone()[0] == 0


def test_the_store_reads_only_likely_pairs_and_finds_what_all_orders_give(
    fresh_db: PgConn,
) -> None:
    """The SQL keeps the orders with a neighbour of the same phone digits in the window; the
    groups must be those of `find_merge_candidates` over every order, phones written with
    spaces, dashes or full-width digits and addresses with full-width spaces included."""
    import random

    rng = random.Random(5)
    phones = ["138 0000 1111", "138-0000-1111", "13800001111", "\uff11\uff13\uff18\uff10\uff10",
              "+86 139 0000 2222", "13900002222", "137 0000 3333"]  # fmt: skip
    addresses = ["上海市徐汇区漕溪北路1号", "上海市\u3000徐汇区 漕溪北路1号", "北京市朝阳区2号"]
    rows = [
        order(
            str(i),
            rng.uniform(0, 600),
            rng.choice(["tmall", "jd", "pdd", "pos"]),
            phone=rng.choice(phones),
            address=rng.choice(addresses),
            is_refunded=rng.random() < 0.1,
            is_cancelled=rng.random() < 0.1,
        )
        for i in range(300)
    ]
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        c.execute(TABLES)
        ensure_ops_tables(c)
        with c.cursor() as cur:
            cur.executemany(
                "insert into intermediate.int_orders (channel, platform_order_no, created_at, "
                "has_cancel, has_refund, receiver_phone, receiver_address) "
                "values (%(channel)s, %(platform_order_no)s, %(created_at)s, %(is_cancelled)s, "
                "%(is_refunded)s, %(receiver_phone)s, %(receiver_address)s)",
                rows,
            )
        report = write_merge_candidates(c, InventoryRules(), T0 + timedelta(hours=11))
        stored = pd.DataFrame(
            c.execute("select group_id, channel, platform_order_no, reason "
                      "from ops.merge_candidates").fetchall(),
            columns=["group_id", "channel", "platform_order_no", "reason"],
        )  # fmt: skip
    expected = find_merge_candidates(pd.DataFrame(rows))
    assert report.groups > 10 and len(expected) == report.orders
    columns = ["group_id", "channel", "platform_order_no", "reason"]
    assert set(map(tuple, stored[columns].values)) == set(map(tuple, expected[columns].values))
    # the full-width phone's household is among them
    assert any("\uff11" in r["receiver_phone"] for r in rows
               if r["platform_order_no"] in set(stored["platform_order_no"]))  # fmt: skip


def test_every_sandbox_duplicate_pair_is_found_as_the_platforms_show_it() -> None:
    """The sandbox's duplicate_order orders, same-channel and cross-channel, seen as the
    platforms hand them over (PDD: receiver only while paid and awaiting shipment, its
    docs/channels.md rule; cancel/refund events as the fold's flags), are all candidates."""
    world = generate_world(seed=3, orders=2000, days=3, end=T0)
    rows = []
    for o in world.orders:
        kinds = {e.type for e in o.events}
        hidden = o.channel == "pdd" and ("pay" not in kinds or "ship" in kinds)
        rows.append(
            order(o.platform_order_no, 0, o.channel,
                  phone=None if hidden else o.receiver.phone,
                  address=None if hidden else o.receiver.address,
                  is_cancelled="cancel" in kinds, is_refunded="refund" in kinds)
            | {"created_at": o.created_at}
        )  # fmt: skip
    found = find_merge_candidates(pd.DataFrame(rows))
    labelled = {(o.channel, o.platform_order_no) for o in world.orders
                if "duplicate_order" in o.labels}  # fmt: skip
    keys = list(zip(found["channel"], found["platform_order_no"], strict=True))
    assert labelled and labelled == set(keys)  # and nothing the sandbox would not merge
    ours = found[[k in labelled for k in keys]]
    per_group = ours.groupby("group_id")["channel"].nunique()
    assert (per_group > 1).any() and (per_group == 1).any()  # cross- and same-channel pairs


def test_merge_group_ids_hold_no_digits_a_pii_scan_could_read_as_a_phone() -> None:
    """Group ids reach marts.fct_orders: a hex digest with 11 digits in a row (mb17444991552d6cd)
    looked like a mobile number to the marts' PII scan. Many households, every id letters."""
    frame = pd.DataFrame(
        [order(f"{h}-{k}", k, phone=f"1380000{h:04d}") for h in range(300) for k in (0, 1)]
    )
    ids = find_merge_candidates(frame)["group_id"].unique()
    assert len(ids) == 300
    assert all(i.isalpha() for i in ids)
