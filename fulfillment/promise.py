"""Delivery promise: how long an order will take from payment to delivery, per decision.

The promise is the `quantile` (0.8) of historical paid -> delivered hours on the same lane
(warehouse -> receiver province) and carrier. Fallbacks, in order: the lane with any carrier,
then `handling_hours` + the carrier's transit days for the distance band from the rule file.
On top comes the warehouse's backlog: orders allocated but not shipped, divided by its daily
capacity, is that many days of queue before this order is picked.

Hour resolution (both learned from the same history, switched on in the rule file):
- `by_paid_hour`: an order paid at 23:00 waits for the morning shift, one paid at 09:00 does
  not. The history gives a shift per paid hour of day (Beijing): the median of that hour's
  hours minus its lane×carrier median, relative to all hours. Lane quantiles are taken over
  the hours less that shift, and a promise adds the shift of its start hour back.
- `closed_hour_share`: hours of the day in which (almost) no delivery of the history happened
  (couriers deliver 08:00-21:00) are closed: a promise falling in one moves back to the end of
  the last open hour. It promises no less: nothing would have been delivered in between.

Pure and vectorised: `lane_hours()` aggregates the history once (a groupby quantile);
`promise_hours()` looks every decision up in a dense (warehouse, carrier, province) array.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fulfillment.routing_rules import RoutingRules

SOURCES = ("lane_carrier", "lane", "distance_band", "none")
BEIJING_S = 8 * 3600  # Beijing = UTC+8, no DST: hours of the day in the merchant's time
HOUR_SHIFT_MIN_SAMPLES = 30  # a paid hour with fewer deliveries gets no shift of its own


@dataclass(frozen=True)
class LaneTable:
    """Historical quantile hours per lane: `by_carrier` (warehouse_id, province, carrier, hours,
    deliveries) and `by_lane` (warehouse_id, province, hours, deliveries); only lanes with at
    least `min_samples` deliveries are kept."""

    by_carrier: pd.DataFrame
    by_lane: pd.DataFrame
    quantile: float
    # hours added per start hour of day (Beijing, 24 values); None: no hour resolution
    paid_hour_shift: np.ndarray | None = None
    # hours of the day (Beijing, 24 bools) in which deliveries happen; None: every hour
    open_hours: np.ndarray | None = None


def _index_of(values: pd.Series, vocabulary: list[str]) -> np.ndarray:
    """Position of each value in `vocabulary` (-1: absent); cheap for categoricals."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories.astype(object)
        table = np.append(pd.Index(vocabulary).get_indexer(cats), -1)
        return table[values.cat.codes.to_numpy()]
    return pd.Index(vocabulary).get_indexer(values.astype(object))


def _utc(values: pd.Series | pd.Index) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def _unix_s(values: pd.Series) -> np.ndarray:
    """Unix seconds of timestamps (float; NaN = missing), whatever their resolution."""
    t = _utc(values)
    return ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(float)


def hour_of_day(unix_s: np.ndarray) -> np.ndarray:
    """Beijing hour of the day (0..23) of unix seconds (int64 array)."""
    return (np.floor_divide(np.asarray(unix_s, dtype=np.int64) + BEIJING_S, 3600) % 24).astype(
        np.int64
    )


def paid_hour_shift(
    hours: np.ndarray, paid_hour: np.ndarray, lane_median: np.ndarray
) -> np.ndarray:
    """Hours to add per paid hour of day: the median of (hours − lane median) of the orders
    paid in that hour, less the same median over all hours (hours with fewer than
    HOUR_SHIFT_MIN_SAMPLES deliveries: 0)."""
    rel = pd.Series(hours - lane_median)
    by_hour = rel.groupby(paid_hour).agg(["median", "size"]).reindex(range(24))
    shift = by_hour["median"].to_numpy(float) - (rel.median() if len(rel) else 0.0)
    enough = by_hour["size"].fillna(0).to_numpy() >= HOUR_SHIFT_MIN_SAMPLES
    return np.where(enough & ~np.isnan(shift), shift, 0.0)


def open_hours(delivered_s: np.ndarray, closed_share: float) -> np.ndarray | None:
    """Hours of the day (Beijing) holding at least `closed_share` of the deliveries; None when
    there are no deliveries or no hour is open."""
    if len(delivered_s) == 0:
        return None
    share = np.bincount(hour_of_day(delivered_s), minlength=24) / len(delivered_s)
    is_open = share >= closed_share
    return is_open if is_open.any() else None


def lane_hours(
    history: pd.DataFrame,
    *,
    quantile: float = 0.8,
    min_samples: int = 20,
    now: datetime | None = None,
    history_days: int | None = None,
    by_paid_hour: bool = False,
    closed_hour_share: float | None = None,
) -> LaneTable:
    """Aggregate delivered orders into lane quantiles.

    `history` columns: warehouse_id, province (receiver), carrier, paid_at, delivered_at
    (timestamps; rows without delivered_at are not deliveries and are ignored). With `now` and
    `history_days` only orders paid within that window count. `by_paid_hour` and
    `closed_hour_share`: the hour resolution of the module docstring."""
    h = history[["warehouse_id", "province", "carrier"]].copy()
    paid = _utc(history["paid_at"])
    paid_s = _unix_s(history["paid_at"])
    delivered_s = _unix_s(history["delivered_at"])
    h["hours"] = (delivered_s - paid_s) / 3600.0
    keep = h["hours"].notna() & (h["hours"] >= 0)
    if now is not None and history_days is not None:
        end = pd.Timestamp(now)
        end = end.tz_convert("UTC") if end.tzinfo else end.tz_localize("UTC")
        keep &= (paid > end - timedelta(days=history_days)).to_numpy()
    keep = keep.to_numpy()
    h = h[keep]
    shift = None
    if by_paid_hour and len(h):
        ph = hour_of_day(paid_s[keep])
        lane_median = h.groupby(["warehouse_id", "province", "carrier"], observed=True)[
            "hours"
        ].transform("median")
        shift = paid_hour_shift(h["hours"].to_numpy(), ph, lane_median.to_numpy())
        # lanes are taken over the hours less the shift of their paid hour
        h["hours"] = h["hours"].to_numpy() - shift[ph]
    closed = None if closed_hour_share is None else open_hours(delivered_s[keep], closed_hour_share)

    def agg(keys: list[str]) -> pd.DataFrame:
        g = h.groupby(keys, observed=True, sort=True)["hours"]
        out = pd.DataFrame({"hours": g.quantile(quantile), "deliveries": g.size()}).reset_index()
        return out[out["deliveries"] >= min_samples].reset_index(drop=True)

    return LaneTable(
        agg(["warehouse_id", "province", "carrier"]),
        agg(["warehouse_id", "province"]),
        quantile,
        shift,
        closed,
    )


def lane_hours_for(
    history: pd.DataFrame, rules: RoutingRules, now: datetime | None = None
) -> LaneTable:
    """`lane_hours` with the quantile, sample floor and window of the rule file's `promise`."""
    p = rules.promise
    return lane_hours(
        history,
        quantile=p.quantile,
        min_samples=p.min_samples,
        now=now,
        history_days=p.history_days if now is not None else None,
        by_paid_hour=p.by_paid_hour,
        closed_hour_share=p.closed_hour_share,
    )


def distance_band(distance_km: np.ndarray, rules: RoutingRules) -> np.ndarray:
    """Band index per distance (0 = nearest band); unknown distances fall in the last band."""
    edges = np.asarray(rules.thresholds.distance_bands_km, dtype=float)
    d = np.where(np.isnan(distance_km), np.inf, distance_km)
    return np.searchsorted(edges, d, side="right")


def promise_hours(
    decisions: pd.DataFrame,
    rules: RoutingRules,
    lanes: LaneTable | None = None,
    backlog: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Promised paid -> delivered hours per decision row.

    `decisions` columns: warehouse_id, carrier, province, distance_km (float, NaN = unknown),
    is_remote (bool); optional start_hour (Beijing hour of day the order's clock starts: its
    payment, or the decision when later) for lanes with a paid-hour shift. Rows without a
    warehouse or carrier get NaN and source "none".
    `backlog`: warehouse_id -> orders allocated but not yet shipped.
    Returns a frame aligned with `decisions`: promise_hours, promise_source (one of SOURCES),
    backlog_hours."""
    n = len(decisions)
    wh_ids = [w.id for w in rules.warehouses]
    car_ids = [c.id for c in rules.carriers]
    w = _index_of(decisions["warehouse_id"], wh_ids)
    c = _index_of(decisions["carrier"], car_ids)
    prov_codes, provinces = pd.factorize(decisions["province"], use_na_sentinel=True)
    n_w, n_c, n_p = len(wh_ids), len(car_ids), max(len(provinces), 1)
    valid = (w >= 0) & (c >= 0)

    hours = np.full(n, np.nan)
    source = np.full(n, SOURCES.index("none"), dtype=np.int8)

    # 1. band fallback: handling + transit days of the carrier in this distance band
    band = distance_band(decisions["distance_km"].to_numpy(dtype=float), rules)
    transit = np.array([cr.transit_days for cr in rules.carriers], dtype=float)  # C × bands
    remote_days = np.array(
        [cr.remote_transit_days or cr.transit_days[-1] for cr in rules.carriers], dtype=float
    )
    remote = decisions["is_remote"].to_numpy(dtype=bool)
    cc = np.where(valid, c, 0)
    days = np.where(remote, remote_days[cc], transit[cc, band])
    hours = np.where(valid, rules.promise.handling_hours + 24.0 * days, hours)
    source = np.where(valid, SOURCES.index("distance_band"), source)

    # 2./3. history: lane, then lane and carrier (the more specific one wins)
    if lanes is not None:
        p_index = pd.Index(np.asarray(provinces, dtype=object))
        pk = np.where(prov_codes >= 0, prov_codes, 0)
        lane = np.full((n_w, n_p), np.nan)
        t = lanes.by_lane
        lw = pd.Index(wh_ids).get_indexer(t["warehouse_id"].astype(object))
        lp = p_index.get_indexer(t["province"].astype(object))
        ok = (lw >= 0) & (lp >= 0)
        lane[lw[ok], lp[ok]] = t["hours"].to_numpy(float)[ok]
        got = valid & (prov_codes >= 0) & ~np.isnan(lane[np.where(valid, w, 0), pk])
        hours = np.where(got, lane[np.where(valid, w, 0), pk], hours)
        source = np.where(got, SOURCES.index("lane"), source)

        lanec = np.full((n_w, n_c, n_p), np.nan)
        t = lanes.by_carrier
        lw = pd.Index(wh_ids).get_indexer(t["warehouse_id"].astype(object))
        lc = pd.Index(car_ids).get_indexer(t["carrier"].astype(object))
        lp = p_index.get_indexer(t["province"].astype(object))
        ok = (lw >= 0) & (lc >= 0) & (lp >= 0)
        lanec[lw[ok], lc[ok], lp[ok]] = t["hours"].to_numpy(float)[ok]
        val = lanec[np.where(valid, w, 0), cc, pk]
        got = valid & (prov_codes >= 0) & ~np.isnan(val)
        hours = np.where(got, val, hours)
        source = np.where(got, SOURCES.index("lane_carrier"), source)

        # history lanes are net of the paid-hour shift: add the start hour's back
        if lanes.paid_hour_shift is not None and "start_hour" in decisions:
            start = decisions["start_hour"].to_numpy(dtype=float)
            known = ~np.isnan(start)
            add = lanes.paid_hour_shift[np.where(known, start, 0).astype(np.int64) % 24]
            from_history = source <= SOURCES.index("lane")
            hours = np.where(from_history & known, hours + add, hours)

    # 4. backlog: days of queue in front of this order at its warehouse
    queue = np.zeros(n_w)
    if backlog:
        caps = np.array([wh.daily_capacity for wh in rules.warehouses], dtype=float)
        for i, wid in enumerate(wh_ids):
            queue[i] = 24.0 * max(int(backlog.get(wid, 0)), 0) / caps[i]
    extra = np.where(valid, queue[np.where(valid, w, 0)], 0.0)
    return pd.DataFrame(
        {
            "promise_hours": hours + extra,
            "promise_source": pd.Categorical.from_codes(source, categories=list(SOURCES)),
            "backlog_hours": extra,
        },
        index=decisions.index,
    )


def start_hour_ns(paid_ns: np.ndarray, now_ns: int) -> np.ndarray:
    """Beijing hour of day at which an order's clock starts: its payment, or `now` when it is
    decided later (or its paid time is unknown: int64 max)."""
    start = np.maximum(np.where(paid_ns == np.iinfo(np.int64).max, now_ns, paid_ns), now_ns)
    return hour_of_day(start // 10**9)


def back_to_open_ns(at_ns: np.ndarray, open_h: np.ndarray | None) -> np.ndarray:
    """Times (int64 ns) falling in a closed hour of the day move back to the end of the last
    open hour before them (one second before the next hour starts); open ones stay."""
    if open_h is None or open_h.all():
        return at_ns
    # per hour of day: how many hours back the last open hour is (0: this one is open)
    back = np.zeros(24, dtype=np.int64)
    for h in range(24):  # 24 values, not per order
        while not open_h[(h - back[h]) % 24]:
            back[h] += 1
    hour = hour_of_day(at_ns // 10**9)
    steps = back[hour]
    hour_start = at_ns - (at_ns + BEIJING_S * 10**9) % (3600 * 10**9)
    moved = hour_start - (steps - 1) * 3600 * 10**9 - 10**9
    return np.where(steps > 0, moved, at_ns)


def promised_at_ns(
    paid_ns: np.ndarray, hours: np.ndarray, now_ns: int, open_h: np.ndarray | None = None
) -> pd.DatetimeIndex:
    """The promised delivery time on int64 ns since the epoch (UTC result): `hours` from the
    payment, or from `now` for an order decided later (or with an unknown paid time: int64
    max): the warehouse starts on an order when its allocation arrives, and the history's
    hours were counted from payments allocated within minutes. `open_h`:
    `LaneTable.open_hours` (a promise in a closed hour moves back to an open one)."""
    h_ns = np.where(np.isnan(hours), 0, hours * 3.6e12).astype(np.int64)
    start = np.maximum(np.where(paid_ns == np.iinfo(np.int64).max, now_ns, paid_ns), now_ns)
    out = start + h_ns
    moved = back_to_open_ns(out, open_h)
    out = np.where(moved > start, moved, out)  # never before its start
    values = out.astype("datetime64[ns]")
    values[np.isnan(hours)] = np.datetime64("NaT")
    return pd.DatetimeIndex(values).tz_localize("UTC")
