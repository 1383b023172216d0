"""Delivery promise: lane quantiles from history, fallbacks, backlog; and in route()."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from fulfillment.promise import lane_hours, lane_hours_for, promise_hours, promised_at_ns
from tests.fulfillment.routing_world import NOW, make_rules, order, row, run


def _history(hours: dict[tuple[str, str, str], list[float]]) -> pd.DataFrame:
    rows = []
    for (wh, province, carrier), values in hours.items():
        for i, h in enumerate(values):
            paid = NOW - timedelta(days=5, minutes=i)
            rows.append(
                {
                    "warehouse_id": wh,
                    "province": province,
                    "carrier": carrier,
                    "paid_at": paid,
                    "delivered_at": paid + timedelta(hours=h),
                }
            )
    return pd.DataFrame(rows)


def test_lane_quantile_is_the_80th_percentile_per_lane_and_carrier() -> None:
    rng = np.random.default_rng(5)
    sf = list(rng.uniform(20, 60, 40))
    ems = list(rng.uniform(40, 90, 30))
    hist = _history({("SZ", "上海市", "SF"): sf, ("SZ", "上海市", "EMS"): ems})
    # an undelivered order is not a delivery
    hist.loc[len(hist)] = ["SZ", "上海市", "SF", NOW, pd.NaT]
    t = lane_hours(hist, quantile=0.8, min_samples=20)
    by = t.by_carrier.set_index("carrier")
    assert by.loc["SF", "hours"] == pytest.approx(np.percentile(sf, 80), abs=1e-6)
    assert by.loc["EMS", "hours"] == pytest.approx(np.percentile(ems, 80), abs=1e-6)
    assert by.loc["SF", "deliveries"] == 40
    lane = t.by_lane.iloc[0]
    assert lane["hours"] == pytest.approx(np.percentile(sf + ems, 80), abs=1e-6)


def test_thin_lanes_fall_back_to_the_lane_then_the_distance_band() -> None:
    rules = make_rules()
    hist = _history(
        {
            ("SZ", "上海市", "SF"): [30.0] * 25,
            ("SZ", "上海市", "EMS"): [70.0] * 5,  # too few for its own promise
            ("HF", "北京市", "SF"): [50.0] * 5,  # too few even for the lane
        }
    )
    t = lane_hours(hist, min_samples=20)
    frame = pd.DataFrame(
        {
            "warehouse_id": ["SZ", "SZ", "HF", "GZ", None],
            "carrier": ["SF", "EMS", "SF", "SF", None],
            "province": ["上海市", "上海市", "北京市", "广东省", "上海市"],
            "distance_km": [85.0, 85.0, 900.0, 20.0, np.nan],
            "is_remote": [False] * 5,
        }
    )
    out = promise_hours(frame, rules, t)
    assert list(out["promise_source"].astype(str)) == [
        "lane_carrier",
        "lane",
        "distance_band",
        "distance_band",
        "none",
    ]
    lane = np.percentile([30.0] * 25 + [70.0] * 5, 80)
    assert out["promise_hours"].iloc[0] == pytest.approx(30.0)
    assert out["promise_hours"].iloc[1] == pytest.approx(lane)
    assert out["promise_hours"].iloc[2] == pytest.approx(24 + 2 * 24)  # SF, 300-1200 km band
    assert out["promise_hours"].iloc[3] == pytest.approx(24 + 1 * 24)
    assert np.isnan(out["promise_hours"].iloc[4])


def test_backlog_adds_days_of_queue() -> None:
    rules = make_rules()  # every warehouse: 100 orders a day
    frame = pd.DataFrame(
        {
            "warehouse_id": ["SZ", "HF"],
            "carrier": ["SF", "SF"],
            "province": ["上海市", "上海市"],
            "distance_km": [85.0, 85.0],
            "is_remote": [False, False],
        }
    )
    out = promise_hours(frame, rules, None, backlog={"SZ": 150})
    assert out["backlog_hours"].tolist() == pytest.approx([36.0, 0.0])
    assert out["promise_hours"].tolist() == pytest.approx([48 + 36.0, 48.0])


def test_history_window_from_the_rule_file() -> None:
    rules = make_rules(promise={"history_days": 3, "min_samples": 1})
    hist = _history({("SZ", "上海市", "SF"): [30.0] * 3})  # paid 5 days ago
    assert lane_hours_for(hist, rules, NOW).by_carrier.empty
    assert len(lane_hours_for(hist, rules).by_carrier) == 1  # no now: no window


def test_promised_time_counts_from_payment_or_a_later_decision() -> None:
    now = pd.Timestamp(NOW).value
    paid = np.array([now + 3_600 * 10**9, now - 72 * 3_600 * 10**9, np.iinfo(np.int64).max])
    at = promised_at_ns(paid, np.array([48.0, 48.0, 48.0]), now)
    assert at[0] == pd.Timestamp(NOW) + timedelta(hours=49)  # decided before payment
    # decided late: the warehouse starts when the allocation arrives, the whole lead time
    # counts from the decision
    assert at[1] == pd.Timestamp(NOW) + timedelta(hours=48)
    assert at[2] == pd.Timestamp(NOW) + timedelta(hours=48)


def test_route_uses_lane_history_and_backlog() -> None:
    hist = _history({("SZ", "上海市", "SF"): list(np.linspace(10, 50, 30))})
    lanes = lane_hours(hist, min_samples=20)
    res = run(order("sh", "上海", {"A": 1}), lanes=lanes, backlog={"SZ": 50})
    r = row(res, "sh")
    expected = np.percentile(np.linspace(10, 50, 30), 80) + 12.0  # 50 / 100 a day = 12 h
    assert r["promise_source"] == "lane_carrier"
    assert r["promise_hours"] == pytest.approx(expected, abs=0.01)
    assert r["promise_days"] == pytest.approx(expected / 24, abs=0.01)
    # paid an hour before NOW, decided at NOW: the lead time counts from the decision
    assert abs(r["promised_delivery_at"] - (pd.Timestamp(NOW) + timedelta(hours=expected))) < (
        timedelta(seconds=40)
    )
