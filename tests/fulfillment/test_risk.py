"""fulfillment.risk: every signal fires on a hand-built case and stays quiet on its neighbour;
the score stays in 0..100; the same inputs give the same output whatever the row order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fulfillment.risk import _window_counts, assess, normalise_phone, score_of, summarise
from fulfillment.risk_rules import ALL_SIGNALS, RiskRules, load_risk_rules

# 10:00 Beijing time: daytime
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RiskRules:
    return load_risk_rules()


def order(n: int = 1, **fields: object) -> dict:
    """A quiet domestic order; `fields` override."""
    row = {
        "channel": "tmall",
        "platform_order_no": f"T{n:04d}",
        "buyer_id": f"B{n:04d}",
        "buyer_ip": f"10.0.{n // 250}.{n % 250}",
        "receiver_name": "张三",
        "receiver_phone": f"138{n:08d}",
        "receiver_address": f"幸福路{n}号",
        "province": "浙江省",
        "country": "CN",
        "goods_value": 200.0,
        "discount_amount": 10.0,
        "platform_discount": 0.0,
        "shop_discount": 10.0,
        "currency": "CNY",
        "hs_code": None,
        "declared_value": None,
        "created_at": T0 + timedelta(minutes=n),
        "paid_at": T0 + timedelta(minutes=n, seconds=30),
        "prior_orders": 3,
    }
    row.update(fields)
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def signals_of(result: pd.DataFrame, no: str = "T0001") -> dict:
    return result.set_index("platform_order_no").loc[no, "signals"]


def test_a_plain_order_passes_with_no_signal(rules: RiskRules) -> None:
    result = assess(frame(order(1)), rules)
    assert list(result["score"]) == [0.0]
    assert signals_of(result) == {}
    assert list(result["decision"]) == ["pass"]


# ---------------------------------------------------------------- validation


def test_missing_required_fields_fire_and_name_the_fields(rules: RiskRules) -> None:
    result = assess(
        frame(
            order(1, receiver_name="  ", receiver_phone=None),
            order(2, receiver_phone="1381234"),
            order(3, receiver_phone="+86 138-1234-5678"),
        ),
        rules,
    )
    assert signals_of(result, "T0001")["missing_required_fields"] == {
        "missing": ["receiver_name", "receiver_phone"]
    }
    assert signals_of(result, "T0002")["missing_required_fields"] == {
        "malformed": ["receiver_phone"]
    }
    assert "missing_required_fields" not in signals_of(result, "T0003")


def test_business_address_words_tag_b2b(rules: RiskRules) -> None:
    result = assess(
        frame(
            order(1, receiver_address="朝阳区建国路88号华贸写字楼B座办公室1203"),
            order(2, receiver_address="西湖区文三路1号3单元"),
        ),
        rules,
    )
    fired = signals_of(result, "T0001")["b2b_address"]
    assert fired == {"tag": "b2b", "words": sorted(["写字楼", "办公室"])}
    assert list(result["b2b"]) == [True, False]
    assert "b2b_address" not in signals_of(result, "T0002")


@pytest.mark.parametrize("prefix", ["170", "171", "162", "165", "167"])
def test_virtual_carrier_prefixes_need_second_verification(rules: RiskRules, prefix: str) -> None:
    result = assess(
        frame(order(1, receiver_phone=f"{prefix}12345678"), order(2, receiver_phone="17212345678")),
        rules,
    )
    assert signals_of(result, "T0001")["virtual_carrier_phone"] == {
        "prefix": prefix,
        "action": "needs_second_verification",
    }
    assert list(result["needs_second_verification"]) == [True, False]


def test_big_first_order(rules: RiskRules) -> None:
    result = assess(
        frame(
            order(1, goods_value=5200.0, prior_orders=0),
            order(2, goods_value=5200.0, prior_orders=1),
            order(3, goods_value=4999.0, prior_orders=0),
        ),
        rules,
    )
    assert signals_of(result, "T0001")["big_first_order"]["goods_value"] == 5200.0
    assert "big_first_order" not in signals_of(result, "T0002")
    assert "big_first_order" not in signals_of(result, "T0003")


def test_first_order_is_counted_in_the_context_without_prior_orders(rules: RiskRules) -> None:
    earlier = order(1, platform_order_no="OLD", created_at=T0 - timedelta(days=1))
    new = order(1, goods_value=8000.0)
    new.pop("prior_orders")
    earlier.pop("prior_orders")
    alone = assess(frame(new), rules)
    assert "big_first_order" in signals_of(alone)
    with_history = assess(frame(new), rules, context=frame(earlier))
    assert "big_first_order" not in signals_of(with_history)


# ---------------------------------------------------------------- behaviour


def test_more_than_five_orders_from_one_ip_in_an_hour(rules: RiskRules) -> None:
    burst = [
        order(i, buyer_ip="1.2.3.4", created_at=T0 + timedelta(minutes=10 * i)) for i in range(1, 7)
    ]
    result = assess(frame(*burst), rules)
    # 6 orders within 10..60 minutes: 50 minutes apart at most
    assert all("ip_burst" in s for s in result["signals"])
    assert signals_of(result, "T0003")["ip_burst"]["orders_in_hour"] == 6
    # five in an hour, the sixth 61 minutes after the first: quiet
    spread = [order(i, buyer_ip="1.2.3.4", created_at=T0 + timedelta(minutes=i)) for i in range(5)]
    spread.append(order(9, buyer_ip="1.2.3.4", created_at=T0 + timedelta(minutes=61)))
    assert not any("ip_burst" in s for s in assess(frame(*spread), rules)["signals"])


def test_ip_burst_counts_the_context_orders(rules: RiskRules) -> None:
    others = [order(i, buyer_ip="9.9.9.9") for i in range(2, 8)]
    result = assess(frame(order(1, buyer_ip="9.9.9.9")), rules, context=frame(*others))
    assert len(result) == 1
    assert signals_of(result)["ip_burst"]["orders_in_hour"] == 7


def _cart(buyer: str, n: int, start: datetime, seconds: float) -> list[dict]:
    step = seconds / max(n - 1, 1)
    return [
        {
            "buyer_id": buyer,
            "action": "cart_add" if k % 2 == 0 else "cart_remove",
            "ip": "10.0.0.1",
            "device": f"dev-{buyer}",
            "event_at": start + timedelta(seconds=k * step),
        }
        for k in range(n)
    ]


def test_cart_churn_over_twenty_per_minute_before_the_order(rules: RiskRules) -> None:
    o1 = order(1, created_at=T0 + timedelta(minutes=30))
    o2 = order(2, created_at=T0 + timedelta(minutes=30))
    o3 = order(3, created_at=T0 + timedelta(minutes=30))
    events = pd.DataFrame(
        _cart("B0001", 21, T0, 50)  # 21 in 50 s: fires
        + _cart("B0002", 20, T0, 50)  # 20: quiet
        + _cart("B0003", 21, T0 - timedelta(hours=3), 50)  # too long before the order
    )
    result = assess(frame(o1, o2, o3), rules, events=events)
    assert signals_of(result, "T0001")["cart_churn"]["cart_events_in_minute"] == 21
    assert "cart_churn" not in signals_of(result, "T0002")
    assert "cart_churn" not in signals_of(result, "T0003")


def test_night_payment_is_beijing_two_to_four(rules: RiskRules) -> None:
    bj = timedelta(hours=8)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    result = assess(
        frame(
            order(1, paid_at=day + timedelta(hours=2, minutes=30) - bj),
            order(2, paid_at=day + timedelta(hours=4) - bj),
            order(3, paid_at=day + timedelta(hours=1, minutes=59) - bj),
            order(4, paid_at=None),
        ),
        rules,
    )
    assert signals_of(result, "T0001")["night_payment"] == {"paid_at_beijing": "2026-11-20 02:30"}
    for no in ("T0002", "T0003", "T0004"):
        assert "night_payment" not in signals_of(result, no)


def test_shared_receiver_phone_device_and_ip(rules: RiskRules) -> None:
    phone = [order(i, receiver_phone="13900000000") for i in (1, 2, 3)]
    quiet_phone = [order(i, receiver_phone="13900000001") for i in (4, 5)]
    result = assess(frame(*phone, *quiet_phone), rules)
    assert signals_of(result, "T0001")["shared_receiver_phone"]["buyers"] == 3
    assert "shared_receiver_phone" not in signals_of(result, "T0004")

    events = pd.DataFrame(
        [
            {"buyer_id": b, "action": "view", "ip": ip, "device": d, "event_at": T0}
            for b, ip, d in [
                ("B0001", "5.5.5.5", "fp-1"),
                ("B0002", "5.5.5.5", "fp-1"),
                ("B0003", "5.5.5.5", "fp-1"),
                ("B0004", "6.6.6.6", "fp-2"),
            ]
        ]
    )
    rows = [order(i) for i in (1, 4)]
    result = assess(frame(*rows), rules, events=events)
    fired = signals_of(result, "T0001")
    assert fired["shared_device"] == {"device": "fp-1", "buyers": 3}
    assert "shared_device" not in signals_of(result, "T0004")


def test_an_identifier_shared_by_too_many_buyers_is_no_identifier(rules: RiskRules) -> None:
    many = rules.behaviour.identifier_max_buyers + 1
    events = pd.DataFrame(
        [
            {"buyer_id": f"B{i:04d}", "action": "view", "ip": None, "device": "iPhone 15 / iOS 17",
             "event_at": T0}
            for i in range(1, many + 1)
        ]
    )  # fmt: skip
    result = assess(frame(order(1)), rules, events=events)
    assert "shared_device" not in signals_of(result)


def test_shared_ip_over_orders(rules: RiskRules) -> None:
    rows = [order(i, buyer_ip="7.7.7.7", created_at=T0 + timedelta(hours=2 * i)) for i in (1, 2, 3)]
    result = assess(frame(*rows, order(4)), rules)
    assert signals_of(result, "T0001")["shared_ip"] == {"ip": "7.7.7.7", "buyers": 3}
    assert "ip_burst" not in signals_of(result, "T0001")
    assert "shared_ip" not in signals_of(result, "T0004")


# ---------------------------------------------------------------- coupons


def test_daily_subsidy_share_above_thirty_percent(rules: RiskRules) -> None:
    # one buyer, two orders the same Beijing day: 70 + 40 of 300 = 36.7 %
    a = order(1, buyer_id="X", goods_value=200.0, discount_amount=70.0)
    b = order(2, buyer_id="X", goods_value=100.0, discount_amount=40.0)
    # 60 of 200 = 30 %: not above
    c = order(3, buyer_id="Y", goods_value=200.0, discount_amount=60.0)
    result = assess(frame(a, b, c), rules)
    fired = signals_of(result, "T0002")["daily_subsidy_share"]
    assert fired["share"] == pytest.approx(110 / 300, abs=1e-4)
    assert fired["day"] == "2026-11-20"
    assert "daily_subsidy_share" in signals_of(result, "T0001")
    assert "daily_subsidy_share" not in signals_of(result, "T0003")


def test_discount_parts_count_when_the_total_is_missing(rules: RiskRules) -> None:
    row = order(1, discount_amount=None, platform_discount=50.0, shop_discount=30.0)
    assert "daily_subsidy_share" in signals_of(assess(frame(row), rules))


def test_platform_coupons_stacked_across_channels(rules: RiskRules) -> None:
    a = order(1, buyer_id="S", channel="tmall", platform_discount=5.0, discount_amount=5.0)
    b = order(2, buyer_id="S", channel="jd", platform_discount=5.0, discount_amount=5.0)
    c = order(3, buyer_id="S", channel="jd", platform_discount=0.0, discount_amount=0.0)
    d = order(4, buyer_id="Q", channel="tmall", platform_discount=5.0, discount_amount=5.0)
    e = order(5, buyer_id="Q", channel="tmall", platform_discount=5.0, discount_amount=5.0)
    # the same buyer the next day on a third channel: another day
    f = order(
        6, buyer_id="S", channel="douyin", platform_discount=5.0, discount_amount=5.0,
        created_at=T0 + timedelta(days=1), paid_at=T0 + timedelta(days=1),
    )  # fmt: skip
    result = assess(frame(a, b, c, d, e, f), rules)
    assert signals_of(result, "T0001")["coupon_stacking"] == {
        "day": "2026-11-20",
        "channels": ["jd", "tmall"],
    }
    assert "coupon_stacking" in signals_of(result, "T0002")
    assert "coupon_stacking" not in signals_of(result, "T0003")  # no coupon of its own
    assert "coupon_stacking" not in signals_of(result, "T0004")  # one channel
    assert "coupon_stacking" not in signals_of(result, "T0006")


# ---------------------------------------------------------------- cross-border


def test_overseas_orders_need_the_customs_fields(rules: RiskRules) -> None:
    result = assess(
        frame(
            order(1, country="US", hs_code=None, declared_value=None),
            order(2, country="JP", hs_code="33049900", declared_value=199.0),
            order(3, country="SG", hs_code="33-04", declared_value=199.0),
            order(4, country="CN", hs_code=None),
        ),
        rules,
    )
    assert signals_of(result, "T0001")["customs_incomplete"] == {
        "country": "US",
        "missing": ["hs_code", "declared_value"],
    }
    assert signals_of(result, "T0003")["customs_incomplete"]["invalid"] == ["hs_code"]
    assert "customs_incomplete" not in signals_of(result, "T0002")
    assert "customs_incomplete" not in signals_of(result, "T0004")
    # always held, whatever the score
    decisions = result.set_index("platform_order_no")["decision"]
    assert decisions["T0001"] == decisions["T0003"] == "review"
    assert decisions["T0002"] == "pass"


# ---------------------------------------------------------------- score and decision


def test_score_combines_weights_as_independent_evidence(rules: RiskRules) -> None:
    assert list(score_of(np.array([[50.0, 50.0, 0.0], [100.0, 20.0, 0.0], [0, 0, 0]]))) == [
        75.0,
        100.0,
        0.0,
    ]
    # one buyer, six orders from one IP in an hour, paid at night: two signals combine
    night_and_burst = [
        order(i, buyer_id="Z", buyer_ip="1.2.3.4",
              paid_at=T0 - timedelta(hours=7, minutes=30) + timedelta(minutes=i))
        for i in range(1, 7)
    ]  # fmt: skip
    result = assess(frame(*night_and_burst), rules)
    assert {frozenset(s) for s in result["signals"]} == {frozenset({"ip_burst", "night_payment"})}
    w = rules.weights
    expected = round(100 * (1 - (1 - w["ip_burst"] / 100) * (1 - w["night_payment"] / 100)), 1)
    assert set(result["score"]) == {expected}
    assert set(result["decision"]) == {"review" if expected > 80 else "pass"}
    # a night owl alone, or with an MVNO number, is not held
    owl = order(1, paid_at=T0 - timedelta(hours=7, minutes=30), receiver_phone="17012345678")
    lone = assess(frame(owl), rules)
    assert lone["decision"].tolist() == ["pass"]
    assert set(signals_of(lone)) == {"night_payment", "virtual_carrier_phone"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 100), min_size=len(ALL_SIGNALS), max_size=len(ALL_SIGNALS)),
                min_size=1, max_size=20))  # fmt: skip
def test_score_is_bounded_and_monotone(matrix: list[list[float]]) -> None:
    weights = np.array(matrix)
    score = score_of(weights)
    assert ((score >= 0) & (score <= 100)).all()
    more = weights.copy()
    more[:, 0] = np.maximum(more[:, 0], 40)
    assert (score_of(more) >= score).all()


def _busy_batch() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(1, 300):
        rows.append(
            order(
                i,
                buyer_id=f"B{rng.integers(0, 120):04d}",
                buyer_ip=f"1.1.1.{rng.integers(0, 30)}",
                receiver_phone=str(rng.choice(["13800000000", "17011112222", f"139{i:08d}"])),
                created_at=T0 + timedelta(minutes=int(rng.integers(0, 600))),
                paid_at=T0 + timedelta(minutes=int(rng.integers(-600, 600))),
                goods_value=float(rng.integers(50, 9000)),
                discount_amount=float(rng.integers(0, 80)),
                platform_discount=float(rng.integers(0, 3)),
                channel=str(rng.choice(["tmall", "jd", "douyin"])),
                country=str(rng.choice(["CN", "CN", "US"])),
                prior_orders=int(rng.integers(0, 2)),
            )
        )
    events = pd.DataFrame(
        _cart("B0001", 30, T0 + timedelta(minutes=5), 40) + _cart("B0002", 5, T0, 40)
    )
    return frame(*rows), events


def test_deterministic_whatever_the_row_order(rules: RiskRules) -> None:
    orders, events = _busy_batch()
    first = assess(orders, rules, events=events)
    shuffled = assess(
        orders.sample(frac=1, random_state=3), rules, events=events.sample(frac=1, random_state=4)
    )
    pd.testing.assert_frame_equal(first, shuffled)
    assert (first["score"].between(0, 100)).all()
    assert set(first["decision"]) <= {"pass", "review"}
    # the evidence is JSON-ready, and counted per signal
    json.dumps(first["signals"].tolist(), ensure_ascii=False)
    counts = summarise(first)
    assert counts and set(counts) <= set(ALL_SIGNALS)


def test_an_empty_batch(rules: RiskRules) -> None:
    assert assess(pd.DataFrame(), rules).empty


def test_window_counts_and_phone_normalisation() -> None:
    times = pd.Series(
        pd.to_datetime(
            ["2026-01-01 10:00", "2026-01-01 10:10", "2026-01-01 10:50", "2026-01-01 11:05",
             "2026-01-01 10:20", None],
            utc=True,
        )
    )  # fmt: skip
    groups = pd.Series(["a", "a", "a", "a", "b", "a"])
    counts = _window_counts(groups, times, 3600)
    assert counts["count"].tolist() == [3, 3, 3, 3, 1, 0]
    # 11:05 lies in the windows from 10:10 (3 rows), 10:50 (2) and 11:05 (1)
    assert counts["start"][3] == pd.Timestamp("2026-01-01 10:10", tz="UTC")
    assert counts["start"][0] == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    phones = normalise_phone(pd.Series(["+86 170-1234-5678", "008613812345678", None]))
    assert phones.tolist()[:2] == ["17012345678", "13812345678"]
    assert pd.isna(phones.tolist()[2])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 500)), min_size=1, max_size=40
    ),
    st.integers(1, 120),
)
def test_window_counts_match_a_brute_force(rows: list[tuple[str, int]], width: int) -> None:
    groups = pd.Series([g for g, _ in rows])
    times = pd.Series(pd.to_datetime([T0 + timedelta(seconds=s) for _, s in rows], utc=True))
    got = _window_counts(groups, times, width)
    for i, (g, t) in enumerate(rows):
        same = [s for h, s in rows if h == g]
        # windows [start, start + width) that hold t start at the group's rows in (t - width, t]
        best = max(sum(1 for s in same if u <= s < u + width) for u in same if t - width < u <= t)
        assert got["count"][i] == best
        start = int((got["start"][i] - pd.Timestamp(T0)).total_seconds())
        assert start in same and start <= t < start + width
        assert sum(1 for s in same if start <= s < start + width) == best
