"""Delivery promise at hour resolution: a shift per paid hour of day, closed delivery hours.

Hand-built histories (Beijing = UTC+8): orders paid in the morning are delivered sooner than
orders paid late at night, and nothing is delivered between 21:00 and 08:00."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fulfillment.promise import (
    HOUR_SHIFT_MIN_SAMPLES,
    back_to_open_ns,
    hour_of_day,
    lane_hours,
    promise_hours,
    promised_at_ns,
    start_hour_ns,
)
from tests.fulfillment.routing_world import NOW, make_rules, order, row, run

DAY0 = datetime(2026, 11, 10, tzinfo=UTC)  # 08:00 Beijing
NIGHT_WAIT = 9.0  # hours an order paid at 23:00 waits for the 08:00 shift


def _bj(day: int, hour: float) -> datetime:
    """`day` days after DAY0, at `hour` o'clock Beijing time."""
    return DAY0 + timedelta(days=day, hours=hour - 8)


def _history(n_per_hour: int = 200, seed: int = 3) -> pd.DataFrame:
    """One lane (SZ -> 上海市 by SF): paid at 10:00 -> 20-30 h; paid at 23:00 -> 9 h more."""
    rng = np.random.default_rng(seed)
    rows = []
    for paid_hour, extra in ((10.0, 0.0), (23.0, NIGHT_WAIT)):
        for i, h in enumerate(rng.uniform(20, 30, n_per_hour) + extra):
            paid = _bj(i % 20, paid_hour)
            rows.append(("SZ", "上海市", "SF", paid, paid + timedelta(hours=float(h))))
    return pd.DataFrame(
        rows, columns=["warehouse_id", "province", "carrier", "paid_at", "delivered_at"]
    )


def _decisions(start_hours: list[int]) -> pd.DataFrame:
    n = len(start_hours)
    return pd.DataFrame(
        {
            "warehouse_id": ["SZ"] * n,
            "carrier": ["SF"] * n,
            "province": ["上海市"] * n,
            "distance_km": [85.0] * n,
            "is_remote": [False] * n,
            "start_hour": start_hours,
        }
    )


def _kept(hist: pd.DataFrame, paid_hour: int, promise: float) -> float:
    """Share of the history's orders paid at `paid_hour` delivered within `promise` hours."""
    paid = pd.to_datetime(hist["paid_at"], utc=True)
    hours = (pd.to_datetime(hist["delivered_at"], utc=True) - paid).dt.total_seconds() / 3600
    mine = ((paid + timedelta(hours=8)).dt.hour == paid_hour).to_numpy()
    return float((hours[mine] <= promise).mean())


def test_hour_of_day_is_beijing_time() -> None:
    s = np.array([_bj(0, 0).timestamp(), _bj(0, 7.99).timestamp(), _bj(3, 23.5).timestamp()])
    assert hour_of_day(s).tolist() == [0, 7, 23]
    now = pd.Timestamp(_bj(0, 12)).value
    paid = np.array([pd.Timestamp(_bj(0, 14)).value, now - 10**12, np.iinfo(np.int64).max])
    assert start_hour_ns(paid, now).tolist() == [14, 12, 12]  # decided late: from now


def test_paid_hour_promise_hits_the_quantile_for_each_paid_hour() -> None:
    rules = make_rules()
    hist = _history()
    plain = lane_hours(hist, quantile=0.9, min_samples=20)
    hourly = lane_hours(hist, quantile=0.9, min_samples=20, by_paid_hour=True)
    assert hourly.paid_hour_shift is not None
    assert hourly.paid_hour_shift[23] - hourly.paid_hour_shift[10] == pytest.approx(
        NIGHT_WAIT, abs=1.0
    )
    assert plain.paid_hour_shift is None
    out = promise_hours(_decisions([10, 23]), rules, hourly)["promise_hours"].to_numpy()
    # each paid hour keeps about 90 % of its own history's promises
    assert _kept(hist, 10, out[0]) == pytest.approx(0.9, abs=0.03)
    assert _kept(hist, 23, out[1]) == pytest.approx(0.9, abs=0.03)
    # one lane quantile over both: the morning orders get hours of slack they do not need
    one = promise_hours(_decisions([10, 23]), rules, plain)["promise_hours"].to_numpy()
    assert one[0] == one[1]
    assert _kept(hist, 10, one[0]) == 1.0
    assert out[0] < one[0] - 5


def test_thin_paid_hours_get_no_shift_and_band_promises_none() -> None:
    hist = _history()
    few = hist.iloc[: HOUR_SHIFT_MIN_SAMPLES - 1].copy()
    few["paid_at"] = [_bj(i, 3) for i in range(len(few))]  # 03:00, too few for a shift
    few["delivered_at"] = few["paid_at"] + timedelta(hours=60)
    lanes = lane_hours(pd.concat([hist, few]), quantile=0.9, by_paid_hour=True)
    assert lanes.paid_hour_shift[3] == 0.0
    frame = _decisions([23, 23])
    frame.loc[1, "province"] = "北京市"  # no lane: the distance band, which has no shift
    out = promise_hours(frame, make_rules(), lanes)
    assert out["promise_source"].astype(str).tolist() == ["lane_carrier", "distance_band"]
    assert out["promise_hours"].iloc[1] == pytest.approx(24 + 24)


def test_closed_hours_come_from_the_history_and_move_a_promise_back() -> None:
    # couriers deliver 08:00-21:00: 20 deliveries in each of those hours, one at 03:00
    delivered = [_bj(d, h + 0.5) for d in range(20) for h in range(8, 21)] + [_bj(5, 3)]
    hist = pd.DataFrame(
        {
            "warehouse_id": "SZ",
            "province": "上海市",
            "carrier": "SF",
            "paid_at": [t - timedelta(hours=30) for t in delivered],
            "delivered_at": delivered,
        }
    )
    lanes = lane_hours(hist, quantile=0.9, closed_hour_share=0.005)
    assert lanes.open_hours is not None
    assert lanes.open_hours.tolist() == [8 <= h < 21 for h in range(24)]
    at = np.array([pd.Timestamp(t).value for t in (_bj(2, 2.5), _bj(2, 21), _bj(2, 15.25))])
    back = back_to_open_ns(at, lanes.open_hours)
    expected = [_bj(1, 21) - timedelta(seconds=1), _bj(2, 21) - timedelta(seconds=1)]
    assert [pd.Timestamp(v, tz="UTC") for v in back[:2]] == expected
    assert back[2] == at[2]
    assert lane_hours(hist, quantile=0.9).open_hours is None  # off unless asked for
    # a share under one in 261 deliveries opens 03:00 too
    assert lane_hours(hist, quantile=0.9, closed_hour_share=0.003).open_hours[3]


def test_promised_time_moves_back_but_never_before_its_start() -> None:
    open_h = np.array([8 <= h < 21 for h in range(24)])
    paid = np.array([pd.Timestamp(_bj(0, 10)).value, pd.Timestamp(_bj(0, 22)).value])
    now = pd.Timestamp(_bj(0, 9)).value
    at = promised_at_ns(paid, np.array([16.0, 1.0]), now, open_h=open_h)
    assert at[0] == pd.Timestamp(_bj(0, 21)) - timedelta(seconds=1)  # 02:00 -> 20:59:59
    assert at[1] == pd.Timestamp(_bj(0, 23))  # back would be before payment: kept


def test_route_adds_the_shift_of_the_start_hour() -> None:
    hist = _history()
    hist["warehouse_id"] = "SZ"
    lanes = lane_hours(hist, quantile=0.9, min_samples=20, by_paid_hour=True)
    # NOW is 20:00 Beijing; the order was paid at 19:00, decided at NOW: its clock starts at 20
    r = row(run(order("sh", "上海", {"A": 1}), lanes=lanes), "sh")
    base = lanes.by_carrier.set_index("carrier").loc["SF", "hours"]
    start = hour_of_day(np.array([NOW.timestamp()]))[0]
    assert start == 20
    assert r["promise_source"] == "lane_carrier"
    assert r["promise_hours"] == pytest.approx(base + lanes.paid_hour_shift[start], abs=0.01)
