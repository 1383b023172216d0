"""The learned risk score's link features (fulfillment/risk_model.py `order_features`) on
hand-built orders: a ring's accounts linked through different identifiers within days, a
family sharing a router and a home over weeks, a phone model thousands share counted as no
identifier."""

from __future__ import annotations

from functools import cache

import pandas as pd

from fulfillment.risk import assess
from fulfillment.risk_model import FEATURES, order_features
from fulfillment.risk_rules import load_risk_rules

T0 = pd.Timestamp("2026-11-10 06:00", tz="UTC")


def _order(no: str, buyer: str, ip: str, phone: str, address: str, hours: float) -> dict:
    at = T0 + pd.Timedelta(hours=hours)
    return {
        "channel": "tmall", "platform_order_no": no, "buyer_id": buyer, "buyer_ip": ip,
        "receiver_name": "王五", "receiver_phone": phone, "receiver_address": address,
        "province": "浙江省", "country": "CN", "goods_value": 300.0, "discount_amount": 0.0,
        "platform_discount": 0.0, "shop_discount": 0.0, "currency": "CNY", "hs_code": None,
        "declared_value": None, "created_at": at - pd.Timedelta(minutes=2), "paid_at": at,
    }  # fmt: skip


@cache  # one frame for both tests
def _features() -> pd.DataFrame:
    orders = pd.DataFrame([
        # a ring: R1 and R2 on one proxy IP, R2 and R3 on one drop phone, within a day
        _order("R1", "R1", "9.9.9.9", "13900000001", "环城路1号", 0),
        _order("R2", "R2", "9.9.9.9", "13900000009", "西湖路2号", 5),
        _order("R3", "R3", "8.8.8.8", "13900000009", "钱塘路3号", 20),
        # a family: one router and one home, orders two weeks apart
        _order("F1", "F1", "7.7.7.7", "13800000001", "幸福路8号", 0),
        _order("F2", "F2", "7.7.7.7", "13800000002", "幸福路8号", 24 * 14),
        # a loner
        _order("L1", "L1", "6.6.6.6", "13700000001", "长安路5号", 1),
    ])  # fmt: skip
    model = "iPhone 15 / iOS 17"
    events = pd.DataFrame(
        # the ring's accounts R1 and R3 on one fingerprinted device; everyone else on a
        # phone model 25 buyers use (more than identifier_max_buyers: no identifier)
        [("R1", "dev#ab12"), ("R3", "dev#ab12"), ("R2", model), ("F1", model), ("F2", model)]
        + [(f"X{i}", model) for i in range(20)],
        columns=["buyer_id", "device"],
    ).assign(event_at=T0, ip="1.1.1.1", action="view", channel="tmall", sku="S1")
    rules = load_risk_rules()
    assessed = assess(orders, rules, context=orders, events=events)
    out = order_features(orders, assessed, rules, context=orders, events=events)
    assert list(out.columns) == list(FEATURES)
    return out.droplevel("channel")


def test_ring_accounts_are_linked_through_different_identifiers_within_days() -> None:
    f = _features()
    # R2 shares the IP with R1 and the phone with R3: two other buyers, two kinds
    assert f.loc["R2", "linked_buyers"] == 2 and f.loc["R2", "linked_kinds"] == 2
    # R1: the IP with R2, the device with R3; R3: the phone with R2, the device with R1
    assert f.loc["R1", "linked_buyers"] == 2 and f.loc["R3", "linked_buyers"] == 2
    assert f.loc["R1", "linked_orders_2d"] == 2  # R2's and R3's orders, 5 h and 20 h later
    assert f.loc["R1", "buyers_on_device"] == 2 and f.loc["R3", "buyers_on_device"] == 2


def test_a_family_over_weeks_and_a_shared_phone_model_do_not_look_like_a_ring() -> None:
    f = _features()
    # one other buyer on two kinds (IP and address), but none of its orders within two days
    assert f.loc["F1", "linked_buyers"] == 1 and f.loc["F1", "linked_kinds"] == 2
    assert f.loc["F1", "linked_orders_2d"] == 0 and f.loc["F2", "linked_orders_2d"] == 0
    # 25 buyers on a phone model: no identifier, every such buyer is on its own
    assert f.loc["F1", "buyers_on_device"] == 1 and f.loc["R2", "buyers_on_device"] == 1
    assert f.loc["L1", ["linked_buyers", "linked_kinds", "linked_orders_2d"]].eq(0).all()
