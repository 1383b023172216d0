"""Delivery promise: how long an order will take from payment to delivery, per decision.

The promise is the `quantile` (0.8) of historical paid -> delivered hours on the same lane
(warehouse -> receiver province) and carrier. Fallbacks, in order: the lane with any carrier,
then `handling_hours` + the carrier's transit days for the distance band from the rule file.
On top comes the warehouse's backlog: orders allocated but not shipped, divided by its daily
capacity, is that many days of queue before this order is picked.

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


@dataclass(frozen=True)
class LaneTable:
    """Historical quantile hours per lane: `by_carrier` (warehouse_id, province, carrier, hours,
    deliveries) and `by_lane` (warehouse_id, province, hours, deliveries); only lanes with at
    least `min_samples` deliveries are kept."""

    by_carrier: pd.DataFrame
    by_lane: pd.DataFrame
    quantile: float


def _index_of(values: pd.Series, vocabulary: list[str]) -> np.ndarray:
    """Position of each value in `vocabulary` (-1: absent); cheap for categoricals."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories.astype(object)
        table = np.append(pd.Index(vocabulary).get_indexer(cats), -1)
        return table[values.cat.codes.to_numpy()]
    return pd.Index(vocabulary).get_indexer(values.astype(object))


def _utc(values: pd.Series | pd.Index) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def lane_hours(
    history: pd.DataFrame,
    *,
    quantile: float = 0.8,
    min_samples: int = 20,
    now: datetime | None = None,
    history_days: int | None = None,
) -> LaneTable:
    """Aggregate delivered orders into lane quantiles.

    `history` columns: warehouse_id, province (receiver), carrier, paid_at, delivered_at
    (timestamps; rows without delivered_at are not deliveries and are ignored). With `now` and
    `history_days` only orders paid within that window count."""
    h = history[["warehouse_id", "province", "carrier"]].copy()
    paid = _utc(history["paid_at"])
    delivered = _utc(history["delivered_at"])
    h["hours"] = (delivered - paid).dt.total_seconds().to_numpy() / 3600.0
    keep = h["hours"].notna() & (h["hours"] >= 0)
    if now is not None and history_days is not None:
        end = pd.Timestamp(now)
        end = end.tz_convert("UTC") if end.tzinfo else end.tz_localize("UTC")
        keep &= (paid > end - timedelta(days=history_days)).to_numpy()
    h = h[keep.to_numpy()]

    def agg(keys: list[str]) -> pd.DataFrame:
        g = h.groupby(keys, observed=True, sort=True)["hours"]
        out = pd.DataFrame({"hours": g.quantile(quantile), "deliveries": g.size()}).reset_index()
        return out[out["deliveries"] >= min_samples].reset_index(drop=True)

    return LaneTable(
        agg(["warehouse_id", "province", "carrier"]), agg(["warehouse_id", "province"]), quantile
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
    is_remote (bool). Rows without a warehouse or carrier get NaN and source "none".
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


def promised_at_ns(
    paid_ns: np.ndarray, hours: np.ndarray, now_ns: int, handling_hours: float
) -> pd.DatetimeIndex:
    """`promised_at` on int64 ns since the epoch (int64 max = unknown paid time); UTC result."""
    h_ns = np.where(np.isnan(hours), 0, hours * 3.6e12).astype(np.int64)
    late_ns = np.where(np.isnan(hours), 0, np.clip(hours - handling_hours, 0, None) * 3.6e12)
    paid = np.where(paid_ns == np.iinfo(np.int64).max, now_ns, paid_ns)
    out = np.maximum(paid + h_ns, now_ns + late_ns.astype(np.int64))
    values = out.astype("datetime64[ns]")
    values[np.isnan(hours)] = np.datetime64("NaT")
    return pd.DatetimeIndex(values).tz_localize("UTC")


def promised_at(
    paid_at: pd.Series, hours: np.ndarray, now: datetime, handling_hours: float
) -> pd.Series:
    """The promised delivery time: paid_at + hours, but an order decided late still gets its
    transit time from now (now + hours − handling); unpaid/unknown paid_at counts from now."""
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_convert("UTC") if now_ts.tzinfo else now_ts.tz_localize("UTC")
    paid = _utc(paid_at).fillna(now_ts)
    delta = pd.to_timedelta(hours, unit="h")
    late = now_ts + pd.to_timedelta(np.clip(hours - handling_hours, 0, None), unit="h")
    out = (paid + delta).where(paid + delta >= late, late)
    return out.where(~np.isnan(hours), pd.NaT)
