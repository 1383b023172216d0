"""The sandbox's delivery model (sandbox/outcomes.py): deterministic per seed, the same noise
for one order wherever it is routed, queues when a warehouse is over capacity, and its own
numbers (never OrderPulse's rule file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sandbox import outcomes
from sandbox.outcomes import CARRIERS_TRUTH, order_keys, simulate_outcomes

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_000_000  # a fixed unix time (no wall clock)


def _batch(n: int = 2000, seed: int = 1):
    rng = np.random.default_rng(seed)
    wh = np.array(["WH-EAST", "WH-SOUTH", "WH-NORTH"], object)[rng.integers(0, 3, n)]
    car = np.array(["SF", "ZTO", "EMS", "JD"], object)[rng.integers(0, 4, n)]
    lat, lon = rng.uniform(22, 40, n), rng.uniform(100, 122, n)
    prov = np.where(rng.random(n) < 0.05, "西藏自治区", "江苏省").astype(object)
    paid = T0 + np.sort(rng.integers(0, 86400, n))
    keys = order_keys(np.full(n, "taobao", object), np.arange(n).astype(str))
    return wh, lat, lon, prov, car, paid, keys


def test_same_seed_same_outcomes_other_seed_differs() -> None:
    wh, lat, lon, prov, car, paid, keys = _batch()
    a = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=5, keys=keys).frame()
    b = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=5, keys=keys).frame()
    c = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=6, keys=keys).frame()
    assert a.equals(b)
    assert not a["delivered_at"].equals(c["delivered_at"])


def test_an_orders_noise_does_not_depend_on_its_batch() -> None:
    wh, lat, lon, prov, car, paid, keys = _batch()
    whole = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=5, keys=keys)
    sel = np.arange(0, len(wh), 97)  # a sparse subset: no queue either way
    part = simulate_outcomes(
        wh[sel], lat[sel], lon[sel], prov[sel], car[sel], paid[sel], seed=5, keys=keys[sel],
        capacity={"WH-EAST": 10**6, "WH-SOUTH": 10**6, "WH-NORTH": 10**6},
    )  # fmt: skip
    free = simulate_outcomes(
        wh, lat, lon, prov, car, paid, seed=5, keys=keys,
        capacity={"WH-EAST": 10**6, "WH-SOUTH": 10**6, "WH-NORTH": 10**6},
    )  # fmt: skip
    assert (part.delivered_at == free.delivered_at[sel]).all()
    assert (part.freight_cost == whole.freight_cost[sel]).all()


def test_lifecycle_is_ordered_and_failures_retry() -> None:
    wh, lat, lon, prov, car, paid, keys = _batch(5000)
    o = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=2, keys=keys)
    assert (paid <= o.allocated_at).all() and (o.allocated_at <= o.picked_at).all()
    assert (o.picked_at < o.packed_at).all() and (o.packed_at < o.shipped_at).all()
    assert (o.shipped_at < o.picked_up_at).all()
    assert (o.picked_up_at < o.departed_at).all() and (o.departed_at < o.arrived_at).all()
    assert (o.arrived_at < o.delivered_at).all()
    failed = o.pickup_failed_at >= 0
    assert 0.005 < failed.mean() < 0.05
    assert (o.pickup_failed_at[failed] < o.picked_up_at[failed]).all()
    # remote regions are slower and cost a surcharge
    remote = prov == "西藏自治区"
    hours = (o.delivered_at - o.picked_up_at) / 3600
    assert hours[remote].mean() > 1.5 * hours[~remote].mean()
    assert (o.freight_cost > 0).all()


def test_a_warehouse_over_capacity_builds_a_queue() -> None:
    n = 3000
    wh = np.full(n, "WH-EAST", object)
    lat, lon = np.full(n, 31.2), np.full(n, 121.5)
    prov, car = np.full(n, "上海市", object), np.full(n, "SF", object)
    paid = T0 + np.sort(np.random.default_rng(0).integers(0, 3600, n))  # one hour's orders
    fast = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=1, capacity={"WH-EAST": 10**6})
    slow = simulate_outcomes(wh, lat, lon, prov, car, paid, seed=1, capacity={"WH-EAST": 1000})
    behind = simulate_outcomes(
        wh, lat, lon, prov, car, paid, seed=1, capacity={"WH-EAST": 1000}, backlog={"WH-EAST": 500}
    )
    wait = (slow.picked_at - slow.allocated_at) / 86400
    assert wait.max() > 2.5  # 3,000 orders at 1,000 a day: the last waits ~3 days
    assert (fast.picked_at <= slow.picked_at).all() and (slow.picked_at <= behind.picked_at).all()


def test_unknown_warehouse_or_carrier_is_named() -> None:
    wh, lat, lon, prov, car, paid, _ = _batch(3)
    with pytest.raises(ValueError, match="WH-MOON"):
        simulate_outcomes(np.array(["WH-MOON"] * 3), lat, lon, prov, car, paid, seed=1)
    with pytest.raises(ValueError, match="DHL"):
        simulate_outcomes(wh, lat, lon, prov, np.array(["DHL"] * 3), paid, seed=1)


def test_the_truth_is_not_the_rule_file() -> None:
    """Similar carriers, not the rule file's numbers: a router tuned on it proves nothing."""
    rules = yaml.safe_load((ROOT / "config" / "routing.yaml").read_text("utf-8"))
    believed = {c["id"]: c for c in rules["carriers"]}
    assert set(CARRIERS_TRUTH) == set(believed)
    same_price = [
        k
        for k, t in CARRIERS_TRUTH.items()
        if list(t.first_kg) == believed[k]["freight"]["first_kg"]
    ]
    assert len(same_price) < len(CARRIERS_TRUTH) // 2
    assert "fulfillment" not in Path(outcomes.__file__).read_text("utf-8").split("import")[1]
