"""Lock planning and the pause-sale list as plain functions: warehouse choice, first paid first
served, oversold, releases, thresholds; a property test: available stock is never negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fulfillment.inventory_locks import (
    NO_WAREHOUSE,
    available_after_locks,
    changed_locks,
    pause_sale_list,
    plan_locks,
    plan_releases,
)

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def lines(*rows: tuple) -> pd.DataFrame:
    """(order_no, sku, qty, minutes after T0, wms_warehouse, routed_warehouse)"""
    return pd.DataFrame(
        [
            {
                "channel": "tmall",
                "platform_order_no": no,
                "sku": sku,
                "qty": qty,
                "paid_at": T0 + timedelta(minutes=m),
                "wms_warehouse": wms,
                "routed_warehouse": routed,
            }
            for no, sku, qty, m, wms, routed in rows
        ]
    )


def stock(**levels: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"warehouse_id": w, "sku": s, "on_hand": n}
            for w, d in levels.items()
            for s, n in d.items()
        ]
    )


def state_of(plan: pd.DataFrame, no: str, sku: str = "A") -> dict:
    row = plan[(plan["platform_order_no"] == no) & (plan["sku"] == sku)]
    assert len(row) == 1
    return row.iloc[0].to_dict()


def test_warehouse_choice_wms_then_routing_then_held_then_most_stock() -> None:
    plan = plan_locks(
        lines(
            ("1", "A", 1, 0, "SH", "BJ"),
            ("2", "A", 1, 1, None, "BJ"),
            ("3", "A", 1, 2, None, None),
            ("4", "A", 1, 3, None, None),
            ("5", "Z", 1, 4, None, None),
        ),
        stock(SH={"A": 5}, BJ={"A": 5}, GZ={"A": 9}),
        pd.DataFrame(
            [
                {
                    "channel": "tmall",
                    "platform_order_no": "3",
                    "sku": "A",
                    "warehouse_id": "SH",
                    "state": "locked",
                }
            ]
        ),  # fmt: skip
    )
    assert (state_of(plan, "1")["warehouse_id"], state_of(plan, "1")["basis"]) == ("SH", "wms")
    assert (state_of(plan, "2")["warehouse_id"], state_of(plan, "2")["basis"]) == ("BJ", "routing")
    assert (state_of(plan, "3")["warehouse_id"], state_of(plan, "3")["basis"]) == ("SH", "held")
    assert state_of(plan, "4")["warehouse_id"] == "GZ"  # most on hand
    assert state_of(plan, "4")["basis"] == "provisional"
    z = state_of(plan, "5", "Z")
    assert (z["warehouse_id"], z["basis"], z["state"]) == (NO_WAREHOUSE, "unstocked", "oversold")
    assert set(plan["state"]) == {"locked", "oversold"}


def test_first_paid_first_served_and_the_rest_oversold() -> None:
    plan = plan_locks(
        lines(
            ("late", "A", 2, 30, "SH", None),
            ("early", "A", 2, 0, "SH", None),
            ("mid", "A", 2, 10, "SH", None),
        ),
        stock(SH={"A": 4}),
    )
    assert state_of(plan, "early")["state"] == "locked"
    assert state_of(plan, "mid")["state"] == "locked"
    assert state_of(plan, "late")["state"] == "oversold"


def test_no_overtaking_a_waiting_earlier_order() -> None:
    plan = plan_locks(
        lines(("big", "A", 5, 0, "SH", None), ("small", "A", 1, 5, "SH", None)),
        stock(SH={"A": 3}),
    )
    assert state_of(plan, "big")["state"] == "oversold"
    assert state_of(plan, "small")["state"] == "oversold"


def test_an_existing_lock_keeps_its_units_over_an_earlier_paid_newcomer() -> None:
    existing = pd.DataFrame(
        [{"channel": "tmall", "platform_order_no": "kept", "sku": "A",
          "warehouse_id": "SH", "state": "locked"}]
    )  # fmt: skip
    plan = plan_locks(
        lines(("kept", "A", 1, 10, "SH", None), ("new", "A", 1, 0, "SH", None)),
        stock(SH={"A": 1}),
        existing,
    )
    assert state_of(plan, "kept")["state"] == "locked"
    assert state_of(plan, "new")["state"] == "oversold"


def test_one_order_two_lines_of_one_sku_is_one_lock() -> None:
    plan = plan_locks(
        lines(("1", "A", 1, 0, "SH", None), ("1", "A", 2, 0, "SH", None)), stock(SH={"A": 9})
    )
    assert len(plan) == 1 and state_of(plan, "1")["qty"] == 3


def test_restock_turns_oversold_into_locked() -> None:
    ls = lines(("1", "A", 3, 0, "SH", None))
    assert state_of(plan_locks(ls, stock(SH={"A": 1})), "1")["state"] == "oversold"
    assert state_of(plan_locks(ls, stock(SH={"A": 3})), "1")["state"] == "locked"


def test_releases_carry_the_reason_and_a_moved_lock_is_not_released() -> None:
    existing = pd.DataFrame(
        [
            {"channel": "tmall", "platform_order_no": n, "sku": "A", "warehouse_id": w,
             "state": s}
            for n, w, s in [("c", "SH", "locked"), ("o", "SH", "oversold"), ("m", "SH", "locked"),
                            ("x", "SH", "released"), ("gone", "SH", "locked")]
        ]
    )  # fmt: skip
    plan = plan_locks(lines(("m", "A", 1, 0, "BJ", None)), stock(BJ={"A": 1}), existing)
    reasons = pd.DataFrame(
        [
            {"channel": "tmall", "platform_order_no": "c", "release_reason": "cancelled"},
            {"channel": "tmall", "platform_order_no": "o", "release_reason": "hold_expired"},
        ]
    )
    rel = plan_releases(existing, plan, reasons).set_index("platform_order_no")
    assert rel["release_reason"].to_dict() == {
        "c": "cancelled",
        "o": "hold_expired",
        "gone": "line_removed",
    }


def test_only_locks_that_change_go_back() -> None:
    ls = lines(
        ("same", "A", 1, 0, "SH", None),
        ("more", "A", 2, 1, "SH", None),
        ("moved", "A", 1, 2, "BJ", None),
        ("new", "A", 1, 3, "SH", None),
        ("again", "A", 1, 4, "SH", None),
        ("late", "A", 9, 5, "SH", None),
    )
    plan = plan_locks(ls, stock(SH={"A": 5}, BJ={"A": 1}))
    existing = plan.copy()
    existing.loc[existing["platform_order_no"] == "more", "qty"] = 1
    existing.loc[existing["platform_order_no"] == "moved", "warehouse_id"] = "SH"
    existing.loc[existing["platform_order_no"] == "again", "state"] = "released"
    existing.loc[existing["platform_order_no"] == "late", "basis"] = "provisional"
    existing = existing[existing["platform_order_no"] != "new"]
    # as read back from the database: numeric quantities, times in another zone
    existing = existing.astype({"qty": float})
    existing["paid_at"] = pd.to_datetime(existing["paid_at"]).dt.tz_convert("Asia/Shanghai")
    changed = changed_locks(plan, existing)
    assert sorted(changed["platform_order_no"]) == ["again", "late", "more", "moved", "new"]
    assert changed.loc[changed["platform_order_no"] == "moved", "warehouse_id"].item() == "BJ"
    assert changed_locks(plan, plan).empty
    assert len(changed_locks(plan, None)) == len(plan)


def test_pause_sale_threshold_default_and_override_and_unstocked_locked_sku() -> None:
    st_ = stock(SH={"A": 6, "B": 3, "C": 10}, BJ={"A": 1, "B": 1})
    locks = pd.DataFrame(
        [
            {"channel": "t", "platform_order_no": "1", "sku": "A", "warehouse_id": "SH",
             "qty": 3, "state": "locked"},
            {"channel": "t", "platform_order_no": "2", "sku": "Z", "warehouse_id": "-",
             "qty": 1, "state": "oversold"},
        ]
    )  # fmt: skip
    paused = pause_sale_list(st_, locks, 5, {"C": 12}).set_index("sku")
    # A: 6-3 + 1 = 4 < 5; B: 3+1 = 4 < 5; C: 10 < 12 (override); Z: nothing anywhere
    assert paused["sellable"].to_dict() == {"A": 4, "B": 4, "C": 10, "Z": 0}
    assert paused.loc["C", "threshold"] == 12
    assert "under the safety threshold 5" in paused.loc["A", "reason"]
    assert pause_sale_list(stock(SH={"A": 50}), locks.iloc[:0], 5, {}).empty


order_rows = st.lists(
    st.tuples(
        st.integers(0, 30),  # order
        st.sampled_from(["A", "B", "C"]),
        st.integers(-1, 7),  # qty (<= 0 is ignored)
        st.integers(0, 600),  # minutes
        st.sampled_from([None, "SH", "BJ"]),
        st.sampled_from([None, "SH", "BJ", "GZ"]),
    ),
    max_size=60,
)
levels = st.dictionaries(
    st.tuples(st.sampled_from(["SH", "BJ", "GZ"]), st.sampled_from(["A", "B", "C"])),
    st.integers(-3, 12),
    max_size=9,
)
held = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from(["SH", "BJ", "GZ"]),
        st.sampled_from(["locked", "oversold", "released"]),
    ),
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(order_rows, levels, held)
def test_available_stock_is_never_negative(rows: list, lv: dict, hold: list) -> None:
    ls = lines(*[(str(o), s, q, m, w, r) for o, s, q, m, w, r in rows])
    if ls.empty:
        ls = lines(("x", "A", 0, 0, None, None))
    stock_frame = pd.DataFrame(
        [{"warehouse_id": w, "sku": s, "on_hand": n} for (w, s), n in lv.items()],
        columns=["warehouse_id", "sku", "on_hand"],
    )
    existing = pd.DataFrame(
        [{"channel": "tmall", "platform_order_no": str(o), "sku": s, "warehouse_id": w,
          "state": x} for o, s, w, x in hold],
        columns=["channel", "platform_order_no", "sku", "warehouse_id", "state"],
    )  # fmt: skip
    plan = plan_locks(ls, stock_frame, existing)
    avail = available_after_locks(stock_frame, plan)
    assert (avail["available"] >= 0).all()
    # one row per order line; every positive line is planned
    assert not plan.duplicated(["channel", "platform_order_no", "sku"]).any()
    wanted = ls[ls["qty"] > 0].groupby(["platform_order_no", "sku"])["qty"].sum()
    got = plan.set_index(["platform_order_no", "sku"])["qty"]
    assert got.sort_index().to_dict() == wanted.sort_index().to_dict()
    # the plan is in allocation order: the locked lines of a warehouse and SKU come first, and
    # the first line that waits really did not fit
    for (w, s), group in plan.groupby(["warehouse_id", "sku"], sort=False):
        on_hand = max(lv.get((w, s), 0), 0) if w != NO_WAREHOUSE else 0
        is_locked = (group["state"] == "locked").to_numpy()
        assert not (is_locked[1:] & ~is_locked[:-1]).any()
        waiting = group[~is_locked]
        if len(waiting):
            assert group.loc[is_locked, "qty"].sum() + waiting["qty"].iloc[0] > on_hand
