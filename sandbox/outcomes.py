"""What really happens to an order once a warehouse and a carrier are chosen: the sandbox's
generative delivery model, the hidden truth that routing is measured against.

`simulate_outcomes(...)` takes arrays (warehouse, receiver coordinates and province, carrier,
paid time, parcel weight, and per warehouse the backlog in front of the batch and the true
daily capacity) and draws, per order: the warehouse's queue and picking/packing, the hand-over
to the carrier, the pickup (occasionally failed, then retried hours later), the transit and
the delivery, and the freight the carrier bills. Vectorised numpy; no loop per order.

## The "true" world (its own numbers: never read from config/routing.yaml)
OrderPulse's rule file holds what the merchant *believes* about carriers (transit days per
band, on-time rates, price lists). The numbers below are what the sandbox's world actually
does; they are similar, not identical, so a router tuned on the rule file is measured on a
world it did not write. In particular:
- transit: a reference network needs `BAND_HOURS` (pickup -> arrival) in the distance bands
  < 300 km, 300-1200 km, >= 1200 km (great-circle, the carriers' own price zones); a carrier
  takes `speed` × that, × a lognormal noise of spread `sigma`; `late_share` of its parcels are
  held at a hub for 1-3 more days (`CONGESTED_PROVINCES`' hubs hold `CONGESTION_LATE_SHARE`
  more); remote regions (新疆/西藏/青海) take `remote_factor` × the transit + 12 h;
- JD and SF are a little faster than their rule-file transit days suggest in the near bands
  and ZTO/YTO/YUNDA/STO a little slower in the far band; EMS is the slowest but the best in
  remote regions; every carrier fails 1-4 % of first pickups;
- warehouses: each picks `capacity` orders a day (first come, first served, a queue when the
  day's orders exceed it; `backlog` orders are already waiting when the batch arrives) and
  works 08:00-22:00 Beijing time; an order reaching the floor at night is picked the next
  morning; picking + packing takes a lognormal `pick_hours`;
- carriers collect 08:00-21:00 and deliver 08:00-21:00 Beijing time;
- freight: `first_kg[band]` + `extra_kg[band]` × whole kg above the first + `remote_surcharge`.

## Determinism and common random numbers
Every draw comes from uniform numbers keyed by (seed, order key, draw index): a per-seed salt
from `numpy.random.default_rng(seed)`, mixed with the order's 64-bit key (`order_keys()`) by
splitmix64. So one order gets the very same noise whichever warehouse or carrier it is routed
to and whichever batch it arrives in: comparing routers on one seed compares their decisions,
not their luck. Without keys, the row index is the key.

Times are unix seconds (int64); -1 means "did not happen" (e.g. `pickup_failed_at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from sandbox.catalog import WAREHOUSES
from sandbox.geo import REMOTE_PROVINCES, haversine_km

HOUR = 3600
BJ = 8 * HOUR  # Beijing = UTC+8 (no DST)
NONE = -1


@dataclass(frozen=True)
class CarrierTruth:
    """How one carrier really performs (see the module docstring)."""

    speed: float  # × BAND_HOURS (1.0 = the reference network)
    sigma: float  # lognormal spread of the transit time
    late_share: float  # parcels held at a hub for 1-3 extra days
    pickup_failure: float  # share of first pickups that fail
    remote_factor: float  # × transit in a remote region
    first_kg: tuple[float, float, float]  # yuan per distance band
    extra_kg: tuple[float, float, float]  # yuan per whole kg above the first
    remote_surcharge: float  # yuan


@dataclass(frozen=True)
class WarehouseTruth:
    capacity: int  # orders picked per day
    pick_hours: float  # median picking + packing hours once the order's turn comes


BAND_EDGES_KM = (300.0, 1200.0)
BAND_HOURS = (22.0, 40.0, 58.0)
SHIFT_HOURS = (8, 22)  # warehouses pick and pack (Beijing time)
COURIER_HOURS = (8, 21)  # carriers collect and deliver (Beijing time)
CONGESTED_PROVINCES = ("四川省", "陕西省")  # hubs with many held parcels
CONGESTION_LATE_SHARE = 0.12

CARRIERS_TRUTH: dict[str, CarrierTruth] = {
    "JD": CarrierTruth(0.90, 0.16, 0.02, 0.010, 2.2, (11, 14, 17), (2, 4, 6.5), 20),
    "SF": CarrierTruth(0.94, 0.18, 0.03, 0.012, 2.2, (13, 16, 20), (2.5, 5, 8), 20),
    "ZTO": CarrierTruth(1.16, 0.22, 0.06, 0.025, 2.6, (5.5, 6.5, 8.5), (1, 2, 4), 18),
    "YTO": CarrierTruth(1.20, 0.24, 0.07, 0.030, 2.6, (5.5, 6.5, 8.5), (1, 2, 4.5), 18),
    "YUNDA": CarrierTruth(1.25, 0.26, 0.085, 0.035, 2.7, (5, 6, 8), (1, 2.5, 4), 18),
    "STO": CarrierTruth(1.30, 0.28, 0.10, 0.040, 2.8, (5, 6, 8), (1, 2.5, 4.5), 18),
    "EMS": CarrierTruth(1.35, 0.25, 0.09, 0.015, 1.6, (9, 11, 15), (2, 4, 8), 12),
}
WAREHOUSES_TRUTH: dict[str, WarehouseTruth] = {
    "WH-EAST": WarehouseTruth(6500, 2.0),
    "WH-SOUTH": WarehouseTruth(5200, 2.5),
    "WH-NORTH": WarehouseTruth(4000, 2.5),
    "WH-WEST": WarehouseTruth(2800, 3.0),
    "WH-FRONT-HZ": WarehouseTruth(1400, 1.0),
}

# the draws of one order, by index into its uniform numbers
_ALLOC, _PICK1, _PICK2, _PACK, _SHIP, _PICKUP, _FAIL, _FAIL_AT, _RETRY = range(9)
_TRANSIT1, _TRANSIT2, _LATE, _LATE_DAYS, _DELIVER, _HUB = range(9, 15)
_DRAWS = 16


@dataclass(frozen=True)
class Outcomes:
    """One row per input order (unix seconds, -1 = did not happen)."""

    allocated_at: np.ndarray  # the WMS accepts the allocation
    picked_at: np.ndarray  # picking starts (after the warehouse's queue and shift)
    packed_at: np.ndarray
    shipped_at: np.ndarray  # handed to the carrier (WMS "ship", shipment "created")
    pickup_failed_at: np.ndarray  # -1 unless the first pickup failed
    picked_up_at: np.ndarray
    departed_at: np.ndarray  # left the origin hub (in_transit)
    arrived_at: np.ndarray  # reached the destination hub (in_transit)
    delivered_at: np.ndarray
    freight_cost: np.ndarray  # yuan, billed by the carrier
    distance_km: np.ndarray
    late: np.ndarray  # bool: held at a hub

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({f.name: getattr(self, f.name) for f in fields(self)})

    @property
    def delivery_hours(self) -> np.ndarray:
        """Hours from allocation to delivery."""
        return (self.delivered_at - self.allocated_at) / HOUR


# -- keyed noise --------------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def order_keys(channel: np.ndarray | pd.Series, platform_order_no: np.ndarray | pd.Series):  # noqa: ANN201
    """A stable 64-bit key per (channel, platform_order_no) (uint64 array)."""
    text = pd.Series(channel, dtype=object).astype(str).to_numpy() + "\x1f"
    text = text + pd.Series(platform_order_no, dtype=object).astype(str).to_numpy()
    return pd.util.hash_array(text.astype(object))


def uniforms(keys: np.ndarray, seed: int, draws: int = _DRAWS) -> np.ndarray:
    """(n, draws) uniform numbers in (0, 1), a pure function of (seed, key, draw index)."""
    salt = np.random.default_rng(seed).integers(0, 2**63, dtype=np.uint64)
    base = _mix(np.asarray(keys, dtype=np.uint64) ^ _mix(np.array([salt], dtype=np.uint64)))
    with np.errstate(over="ignore"):
        streams = np.arange(1, draws + 1, dtype=np.uint64) * _GOLDEN
        bits = _mix(base[:, None] + streams[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _normal(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normal numbers from two uniforms (Box-Muller)."""
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# -- clocks -------------------------------------------------------------------------------
def _within_hours(t: np.ndarray, hours: tuple[int, int], extra: np.ndarray) -> np.ndarray:
    """`t` if its Beijing hour lies in [open, close), else the next opening + `extra` s."""
    open_h, close_h = hours
    local = t + BJ
    day = local // 86400
    hour = (local % 86400) / HOUR
    next_open = np.where(hour < open_h, day, day + 1) * 86400 + open_h * HOUR - BJ
    return np.where((hour >= open_h) & (hour < close_h), t, next_open + extra.astype(np.int64))


def _queue(
    wh: np.ndarray, ready: np.ndarray, backlog: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """When each order's turn comes in its warehouse's first-come-first-served queue.

    A warehouse serves `capacity` orders a day, one every s = 86400 / capacity seconds; the
    k-th order of a warehouse (by ready time) starts at max(ready_k, start_{k-1} + s), and the
    first can start only once the `backlog` orders ahead of the batch are done. Unrolled:
    start_k = k·s + max(first_ready + backlog·s, cummax_{j<=k}(ready_j − j·s))."""
    n = len(ready)
    order = np.lexsort((np.arange(n), ready, wh))
    w, a = wh[order], ready[order].astype(np.float64)
    first = np.r_[True, w[1:] != w[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    k = np.arange(n) - group_start
    s = 86400.0 / capacity[w]
    cleared = a[group_start] + backlog[w] * s
    running = pd.Series(a - k * s).groupby(w).cummax().to_numpy()
    start = np.empty(n)
    start[order] = k * s + np.maximum(cleared, running)
    return np.ceil(start).astype(np.int64)


# -- the model ----------------------------------------------------------------------------
def simulate_outcomes(
    warehouse_id: np.ndarray | pd.Series,
    receiver_lat: np.ndarray,
    receiver_lon: np.ndarray,
    province: np.ndarray | pd.Series,
    carrier: np.ndarray | pd.Series,
    paid_at: np.ndarray,
    *,
    seed: int,
    weight_kg: np.ndarray | None = None,
    keys: np.ndarray | None = None,
    allocated_at: np.ndarray | None = None,
    backlog: Mapping[str, int] | None = None,
    capacity: Mapping[str, float] | None = None,
    congested: tuple[str, ...] = CONGESTED_PROVINCES,
) -> Outcomes:
    """Play the future of `n` allocated orders (all arrays of length n).

    - warehouse_id: one of `WAREHOUSES_TRUTH` (coordinates from sandbox.catalog); carrier: one
      of `CARRIERS_TRUTH`; province: the receiver's (remote regions are slower);
      receiver_lat/lon: degrees.
    - paid_at: unix seconds; the allocation reaches the WMS 2-20 min later unless
      `allocated_at` (unix seconds) says when it did.
    - weight_kg: parcel weight (default 0.5 kg); keys: `order_keys(...)` (default: row index).
    - backlog: warehouse -> orders already waiting when the batch arrives (default 0);
      capacity: warehouse -> orders picked per day (default the true `WAREHOUSES_TRUTH`).
    - congested: provinces whose hubs hold more parcels (a calm sandbox world: none).
    Same inputs and seed -> same outcomes; an order's noise depends on its key only."""
    wh = pd.Series(warehouse_id, dtype=object).to_numpy()
    car = pd.Series(carrier, dtype=object).to_numpy()
    n = len(wh)
    wh_ids = list(WAREHOUSES_TRUTH)
    car_ids = list(CARRIERS_TRUTH)
    w = pd.Index(wh_ids).get_indexer(wh)
    c = pd.Index(car_ids).get_indexer(car)
    if (w < 0).any():
        raise ValueError(f"unknown warehouse {wh[w < 0][0]!r}; the sandbox has {wh_ids}")
    if (c < 0).any():
        raise ValueError(f"unknown carrier {car[c < 0][0]!r}; the sandbox has {car_ids}")
    paid = np.asarray(paid_at, dtype=np.int64)
    kg = np.full(n, 0.5) if weight_kg is None else np.asarray(weight_kg, dtype=float)
    keys = np.arange(n, dtype=np.uint64) if keys is None else np.asarray(keys, dtype=np.uint64)
    u = uniforms(keys, seed)

    # warehouse: allocation, queue (capacity, backlog), shift, picking and packing
    alloc = (
        paid + (120 + u[:, _ALLOC] * 1080).astype(np.int64)
        if allocated_at is None
        else np.asarray(allocated_at, dtype=np.int64)
    )
    cap = capacity or {}
    caps = np.array([float(cap.get(i, WAREHOUSES_TRUTH[i].capacity)) for i in wh_ids])
    if (caps <= 0).any():
        bad = [i for i, x in zip(wh_ids, caps, strict=True) if x <= 0]
        raise ValueError(f"capacity of {bad} must be > 0 orders a day")
    waiting = np.array([max(int((backlog or {}).get(i, 0)), 0) for i in wh_ids], dtype=float)
    turn = _queue(w, alloc, waiting, caps) if n else np.zeros(0, np.int64)
    picked = _within_hours(turn, SHIFT_HOURS, u[:, _PICK1] * 1800)
    median = np.array([WAREHOUSES_TRUTH[i].pick_hours for i in wh_ids])[w]
    work = median * HOUR * np.exp(0.45 * _normal(u[:, _PICK1], u[:, _PICK2]))
    packed = picked + np.clip(work, 0.3 * HOUR, 12 * HOUR).astype(np.int64)
    shipped = packed + (600 + u[:, _PACK] * 2400).astype(np.int64)

    # carrier: pickup (a failed first attempt is retried 4-10 h later), within courier hours
    truth = [CARRIERS_TRUTH[i] for i in car_ids]
    fail_p = np.array([t.pickup_failure for t in truth])[c]
    failed = u[:, _FAIL] < fail_p
    collect = shipped + (1800 + u[:, _PICKUP] * 9000).astype(np.int64)
    collect = _within_hours(collect, COURIER_HOURS, 3600 + u[:, _PICKUP] * 7200)
    fail_at = np.where(failed, collect, NONE)
    retry = collect + (4 * HOUR + u[:, _RETRY] * 6 * HOUR).astype(np.int64)
    retry = _within_hours(retry, COURIER_HOURS, 3600 + u[:, _FAIL_AT] * 7200)
    picked_up = np.where(failed, retry, collect)

    # transit: distance band × carrier speed × lognormal noise; remote; held at a hub
    whs = {x.warehouse_id: x for x in WAREHOUSES}
    wlat = np.array([whs[i].latitude for i in wh_ids])[w]
    wlon = np.array([whs[i].longitude for i in wh_ids])[w]
    dist = haversine_km(
        wlat, wlon, np.asarray(receiver_lat, float), np.asarray(receiver_lon, float)
    )
    dist = np.where(np.isnan(dist), 1500.0, dist)  # unknown receiver: the far band
    band = np.searchsorted(np.asarray(BAND_EDGES_KM), dist, side="right")
    prov = pd.Series(province, dtype=object).to_numpy()
    remote = np.isin(prov, REMOTE_PROVINCES)
    speed = np.array([t.speed for t in truth])[c]
    sigma = np.array([t.sigma for t in truth])[c]
    hours = np.asarray(BAND_HOURS)[band] * speed
    hours = hours * np.exp(sigma * _normal(u[:, _TRANSIT1], u[:, _TRANSIT2]) - sigma**2 / 2)
    remote_factor = np.array([t.remote_factor for t in truth])[c]
    hours = np.where(remote, hours * remote_factor + 12.0, hours)
    late_p = np.array([t.late_share for t in truth])[c]
    late_p = late_p + np.where(np.isin(prov, list(congested)), CONGESTION_LATE_SHARE, 0.0)
    late = u[:, _LATE] < late_p
    hours = hours + np.where(late, 24.0 + u[:, _LATE_DAYS] * 48.0, 0.0)
    transit = (hours * HOUR).astype(np.int64)
    arrival = picked_up + transit
    delivered = _within_hours(arrival, COURIER_HOURS, 3600 + u[:, _DELIVER] * 3 * 3600)
    departed = picked_up + (transit * (0.1 + 0.15 * u[:, _HUB])).astype(np.int64)
    arrived = picked_up + (transit * (0.75 + 0.15 * u[:, _HUB])).astype(np.int64)
    arrived = np.minimum(arrived, delivered - 1800)

    # freight billed by the carrier
    first = np.array([t.first_kg for t in truth], dtype=float)[c, band]
    extra = np.array([t.extra_kg for t in truth], dtype=float)[c, band]
    surcharge = np.array([t.remote_surcharge for t in truth])[c]
    cost = first + extra * np.ceil(np.maximum(kg - 1.0, 0.0)) + np.where(remote, surcharge, 0.0)

    return Outcomes(
        allocated_at=alloc,
        picked_at=picked,
        packed_at=packed,
        shipped_at=shipped,
        pickup_failed_at=fail_at,
        picked_up_at=picked_up,
        departed_at=departed,
        arrived_at=arrived,
        delivered_at=delivered,
        freight_cost=np.round(cost, 2),
        distance_km=np.round(dist, 1),
        late=late,
    )
