"""Risk on a sandbox world: the injected abuse (IP farms, cart bots, coupon stacking, overseas
orders without customs data) is held, and no order the sandbox did not mark is held.

The signal labels are mostly the same rules restated, so this is a regression check on the
wiring of signals to the world's data shapes, not a measure of recall: that is measured
against the hidden `fraud` / `coupon_abuse` verdicts by bench/risk_quality.py
(tests/fulfillment/test_risk_quality.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime

import pandas as pd
import pytest

from fulfillment.risk import assess
from fulfillment.risk_rules import load_risk_rules
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def assessed() -> pd.DataFrame:
    world = generate_world(seed=7, orders=8000, days=5, end=END)
    rows = []
    for o in world.orders:
        if o.paid_at is None:
            continue
        platform = float(sum(c.amount for c in o.coupons if c.issuer == "platform"))
        shop = float(sum(c.amount for c in o.coupons if c.issuer == "shop"))
        customs = o.customs
        rows.append(
            {
                "channel": o.channel,
                "platform_order_no": o.platform_order_no,
                "buyer_id": o.buyer_id,
                "buyer_ip": o.buyer_ip,
                "receiver_name": o.receiver.name,
                "receiver_phone": o.receiver.phone,
                "receiver_address": o.receiver.address,
                "province": o.receiver.province,
                "country": o.country,
                "goods_value": float(sum(i.price * i.qty for i in o.items)),
                "discount_amount": platform + shop,
                "platform_discount": platform,
                "shop_discount": shop,
                "currency": "CNY",
                "hs_code": customs.hs_code if customs else None,
                "declared_value": (
                    float(customs.declared_value)
                    if customs and customs.declared_value is not None
                    else None
                ),
                "created_at": o.created_at,
                "paid_at": o.paid_at,
                "labels": tuple(o.labels),
            }
        )
    orders = pd.DataFrame(rows)
    events = pd.DataFrame([asdict(e) for e in world.behaviour_log]).rename(
        columns={"at": "event_at"}
    )
    result = assess(orders.drop(columns="labels"), load_risk_rules(), events=events)
    return result.merge(orders[["channel", "platform_order_no", "labels"]])


def test_injected_abuse_is_held(assessed: pd.DataFrame) -> None:
    held = assessed["decision"].eq("review")
    for label in ("ip_burst", "cart_churn", "customs_incomplete"):
        marked = assessed["labels"].map(lambda ls, label=label: label in ls)
        assert marked.sum() > 0, label
        assert held[marked].all(), label
    stacked = assessed["labels"].map(lambda ls: "coupon_stacking" in ls)
    # the label marks every order of the buyer that day; the signal needs a platform coupon
    assert held[stacked].mean() >= 0.9


def test_no_unmarked_order_is_held(assessed: pd.DataFrame) -> None:
    unmarked = assessed["labels"].map(len).eq(0)
    assert unmarked.sum() > 1000
    assert not assessed.loc[unmarked, "decision"].eq("review").any()
    # honest signals alone (night owls, MVNO numbers, offices) do not hold an order
    honest = {"night_payment", "virtual_carrier_phone", "b2b_address"}
    alone = assessed["labels"].map(lambda ls: bool(ls) and set(ls) <= honest)
    assert alone.sum() > 50
    assert not assessed.loc[alone, "decision"].eq("review").any()
    counts = Counter(s for signals in assessed["signals"] for s in signals)
    assert counts["b2b_address"] and counts["night_payment"] and counts["virtual_carrier_phone"]
