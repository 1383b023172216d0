"""Routing (智能分单): for every paid order, the warehouse and carrier it ships from, or that a
person must look at it, with the rule that decided and its evidence.

One public entry: `route(orders, lines, stock, warehouse_health, rules, now, ...)`. Pure
(no database, no Dagster) and vectorised: every rule is array work over an orders × warehouses
matrix; Python loops run only over the rules (≤ 6), warehouses (≤ 10) and carriers.

The chain (`rules.chain`, default order of issue 10); each rule decides, skips or passes on:
1. circuit_breaker: a warehouse whose last stock sync is older than
   `thresholds.stock_sync_stale_minutes`, or with `consecutive_shipping_failures` failures in a
   row, drops out for every order; an order whose nearest stock-holding warehouse it was ships
   from the best national warehouse (`is_national`) that holds it; one alert row per cause.
2. front_hot_skus: an order whose SKUs are all hot, within `front_radius_km` of a front
   warehouse that holds it, ships from the nearest such.
3. near_stock: the nearest warehouse within `near_km` that holds the whole order.
4. remote_region: a remote-region order ships from the best-scoring warehouse with a carrier
   whose SLA covers the region (EMS).
5. freight_share: freight above `freight_share` of the goods value -> manual_review.
6. weighted_score: the best score (see config/routing.yaml); when no single warehouse holds the
   order: `split_policy` (rule "split_policy": split, or manual_review).
Everywhere, a warehouse whose stock of one of the order's SKUs is under `low_stock_share` of
that SKU's safety threshold yields to the next candidate (it is used only when no other holds
the order; the yielded ones are in `inputs["yielded"]`). A warehouse "holds" an order when its
available stock covers every line. Orders no rule decides go to `fallback` (rule "fallback").

Capacity and stock within the batch: orders are decided in a fixed order (paid_at, channel,
platform_order_no). After each round a cumulative count per warehouse (and a cumulative
quantity per warehouse and SKU) finds where a warehouse's remaining daily capacity (or a SKU's
available stock there) runs out; the warehouse is closed to every later order (for that SKU)
and the orders past that point are decided again, at most 2 × warehouses + 2 rounds (about one
per warehouse that fills up); what still overflows goes to the fallback (reason "capacity" or
"stock_exhausted"). Earlier orders always win: a later order never takes a slot or a unit an
earlier one needed. Same inputs + same rules -> same output, whatever the row order.

String keys (channel, order number, SKU, province) are hashed and sorted with Arrow (pandas'
own string backend), the rest is numpy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fulfillment import promise as promise_mod
from fulfillment.routing_rules import (
    RULES,
    RoutingRules,
    load_routing_rules,
    resolve_hot_skus,
)

__all__ = ["RoutingResult", "load_routing_rules", "resolve_hot_skus", "route"]

EARTH_RADIUS_KM = 6371.0
DECISIONS = ("ship", "split", "manual_review")
RULE_NAMES = (*RULES, "split_policy", "fallback")
FALLBACK_REASONS = (
    "no_lines",
    "no_carrier",
    "no_stock",
    "capacity",
    "stock_exhausted",
    "rules_exhausted",
)
_CAPACITY, _STOCK = 1, 2  # bits of _State.blocked
SHIP, SPLIT, REVIEW = 0, 1, 2
_R = {name: i for i, name in enumerate(RULE_NAMES)}
_SEP = pa.scalar("\x1f", pa.large_string())  # joins channel and order no into one key
_PREFER = 1e6  # added to the score of a warehouse that does not have to yield (low stock)
_MAX_FALLBACK_DEPTH = 2

ORDER_COLUMNS = (
    "channel",
    "platform_order_no",
    "province",
    "latitude",
    "longitude",
    "goods_value",
    "freight",
    "paid_at",
)
LINE_COLUMNS = ("channel", "platform_order_no", "sku", "qty")
STOCK_COLUMNS = ("warehouse_id", "sku", "available")
HEALTH_COLUMNS = ("warehouse_id", "last_stock_sync_at")

DECISION_COLUMNS = (
    "channel",
    "platform_order_no",
    "decision",
    "warehouse_id",
    "carrier",
    "rule",
    "score",
    "inputs",
    "distance_km",
    "freight_cost",
    "promise_hours",
    "promise_days",
    "promised_delivery_at",
    "promise_source",
    "config_version",
    "decided_at",
)
ALERT_COLUMNS = ("warehouse_id", "reason", "facts")


@dataclass(frozen=True)
class RoutingResult:
    """`decisions`: one row per order (DECISION_COLUMNS), in decision order. `alerts`: one row
    per tripped circuit breaker (warehouse_id, reason, facts)."""

    decisions: pd.DataFrame
    alerts: pd.DataFrame
    rounds: int = 1


# -- input preparation ---------------------------------------------------------------------
def _require(frame: pd.DataFrame, name: str, columns: Collection[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"route(): {name} lacks column(s) {missing} (has {list(frame.columns)}); "
            f"see the docstring of fulfillment.routing.route for the expected columns"
        )


def _strings(values: pd.Series) -> pa.Array:
    """A column as an Arrow large_string array (zero-copy for pandas' Arrow-backed str):
    string keys are hashed, joined and sorted by Arrow, ~10× faster than object arrays."""
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.large_string())
    return arr.fill_null("")


def _key(frame: pd.DataFrame) -> pa.Array:
    return pc.binary_join_element_wise(
        _strings(frame["channel"]), _strings(frame["platform_order_no"]), _SEP
    )


def _codes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of a string array; codes index uniques."""
    enc = pc.dictionary_encode(values)
    return (
        enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        np.asarray(enc.dictionary.to_pylist(), dtype=object),
    )


def _decision_order(orders: pd.DataFrame, lines: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The decision order (a permutation of the orders: paid_at, channel, platform_order_no)
    and, per line, the position of its order in that order (-1: not in this batch)."""
    n = len(orders)
    paid = _utc_ns(orders["paid_at"])
    ch, no = _strings(orders["channel"]), _strings(orders["platform_order_no"])
    okey = pc.binary_join_element_wise(ch, no, _SEP)
    # one hash pass over order and line keys: codes follow first appearance, so the orders
    # are unique exactly when their codes are 0..n-1, and a line's code is its order's row
    codes, _ = pd.factorize(pa.concat_arrays([okey, _key(lines)]).to_pandas())
    if not np.array_equal(codes[:n], np.arange(n)):
        dup = okey.take(np.flatnonzero(codes[:n] != np.arange(n))[:3]).to_pylist()
        raise ValueError(
            "route(): orders has duplicate (channel, platform_order_no): "
            f"{[d.replace(chr(31), '/') for d in dup]}; pass one row per order"
        )
    table = pa.table({"p": paid, "c": ch, "n": no})
    keys = [("p", "ascending"), ("c", "ascending"), ("n", "ascending")]
    perm = pc.sort_indices(table, sort_keys=keys).to_numpy()
    position = np.empty(n, dtype=np.int64)
    position[perm] = np.arange(n)
    lc = codes[n:]
    line_order = np.where(lc < n, position[np.minimum(lc, max(n - 1, 0))], -1)
    return perm, line_order.astype(np.int64)


def _utc_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 ns since the epoch (UTC); NaT -> int64 max (sorts last)."""
    ts = pd.to_datetime(values, utc=True)
    out = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    out[ts.isna().to_numpy()] = np.iinfo(np.int64).max
    return out


def _now_ns(now: datetime) -> tuple[int, pd.Timestamp]:
    ts = pd.Timestamp(now)
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    return int(ts.as_unit("ns").value), ts


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km, element-wise with broadcasting (NaN in -> NaN out)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _mask_lists(masks: np.ndarray, ids: list[str]) -> np.ndarray:
    """Bit masks over warehouses -> an object array of id lists (one list per distinct mask)."""
    uniq, inv = np.unique(masks, return_inverse=True)
    table = np.empty(len(uniq), dtype=object)
    for k, m in enumerate(uniq.tolist()):
        table[k] = [ids[i] for i in range(len(ids)) if m >> i & 1]
    return table[inv]


@dataclass
class _World:
    """Every input as arrays aligned with the sorted orders (N), lines (L) and warehouses (W)."""

    rules: RoutingRules
    n: int
    wh_ids: list[str]
    car_ids: list[str]
    dist: np.ndarray  # N × W km, NaN when the receiver has no coordinates
    holds: np.ndarray  # N × W: available stock covers every line
    low: np.ndarray  # N × W: some SKU of the order under low_stock_share × safety
    suff: np.ndarray  # N × W: stock sufficiency 0..1 (worst SKU)
    carrier: np.ndarray  # N × W: best carrier index, -1 none
    score: np.ndarray  # N × W
    tripped: np.ndarray  # W
    national: np.ndarray  # W
    front: np.ndarray  # W
    all_hot: np.ndarray  # N
    remote: np.ndarray  # N
    share: np.ndarray  # N: freight / goods value
    has_lines: np.ndarray  # N
    l_order: np.ndarray  # L, sorted
    l_sku: np.ndarray  # L
    l_qty: np.ndarray  # L
    l_weight: np.ndarray  # L (kg for the whole line)
    l_start: np.ndarray  # N: first line of each order (l_start[o]..l_end[o])
    l_end: np.ndarray  # N
    line_ok: np.ndarray  # L × W
    line_low: np.ndarray  # L × W
    avail: np.ndarray  # W × S
    skus: np.ndarray  # S: SKU codes of the batch
    remaining: np.ndarray  # W: capacity left today
    perm: np.ndarray  # N: input row of each order in decision order
    prov_codes: np.ndarray  # N
    provinces: np.ndarray  # uniques
    goods: np.ndarray  # N yuan
    freight: np.ndarray  # N yuan
    paid_ns: np.ndarray  # N (int64 max = unknown)
    channel: pa.Array  # N
    order_no: pa.Array  # N
    day: np.ndarray | None  # N: capacity day per order (None = one day for the batch)


@dataclass
class _State:
    rule: np.ndarray
    decision: np.ndarray
    wh: np.ndarray
    carrier: np.ndarray
    line_wh: np.ndarray
    dropped: np.ndarray  # the tripped warehouse an order was re-routed from, -1
    yielded: np.ndarray  # bit mask of low-stock warehouses passed over
    runner: np.ndarray  # weighted_score: the runner-up warehouse, -1
    reason: np.ndarray  # fallback reason index, -1
    blocked: np.ndarray  # N × W bits: full (1) or out of stock (2) for this order

    @classmethod
    def empty(cls, n: int, n_lines: int, n_wh: int) -> _State:
        neg = np.full(n, -1, dtype=np.int16)
        return cls(
            neg.copy(),
            neg.copy(),
            neg.copy(),
            neg.copy(),
            np.full(n_lines, -1, dtype=np.int16),
            neg.copy(),
            np.zeros(n, dtype=np.int64),
            neg.copy(),
            neg.copy(),
            np.zeros((n, n_wh), dtype=np.uint8),
        )


def _build_world(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    stock: pd.DataFrame,
    health: pd.DataFrame,
    rules: RoutingRules,
    now_ns: int,
    capacity_used: Mapping[str, int] | None,
    hot: frozenset[str],
    capacity_day_offset_ns: int | None,
    perm: np.ndarray,
    line_order: np.ndarray,
) -> tuple[_World, pd.DataFrame]:
    """`orders` in input order; `perm` puts them in decision order; `line_order` maps each line
    to its order's position in that order."""
    th, sc = rules.thresholds, rules.score
    wh_ids = [w.id for w in rules.warehouses]
    car_ids = [c.id for c in rules.carriers]
    n, n_w = len(orders), len(wh_ids)

    # -- lines: order index and SKU index, aggregated per (order, SKU) ----------------------
    def col(name: str) -> np.ndarray:  # a numeric order column in decision order
        return pd.to_numeric(orders[name]).to_numpy(dtype=float)[perm]

    keep = line_order >= 0  # lines of orders not in this batch are ignored
    li = line_order[keep]
    sku_codes, skus = _codes(_strings(lines["sku"]))
    sku_codes = sku_codes[keep]
    n_s = max(len(skus), 1)
    qty = pd.to_numeric(lines["qty"]).to_numpy(dtype=float)[keep]
    if "weight_kg" in lines.columns:
        unit_kg = pd.to_numeric(lines["weight_kg"]).to_numpy(dtype=float)[keep]
        unit_kg = np.where(np.isnan(unit_kg), rules.default_item_weight_kg, unit_kg)
    else:
        unit_kg = np.full(len(qty), rules.default_item_weight_kg)
    combo = li.astype(np.int64) * n_s + sku_codes
    uniq, inv = np.unique(combo, return_inverse=True)  # sorted by order, then SKU
    l_order = (uniq // n_s).astype(np.int64)
    l_sku = (uniq % n_s).astype(np.int64)
    l_qty = np.bincount(inv, weights=qty, minlength=len(uniq))
    l_weight = np.bincount(inv, weights=qty * unit_kg, minlength=len(uniq))
    counts = np.bincount(l_order, minlength=n)
    l_end = np.cumsum(counts)
    l_start = l_end - counts
    has_lines = counts > 0

    # -- stock: W × S available and safety threshold ---------------------------------------
    avail = np.zeros((n_w, n_s))
    safety = np.repeat(
        np.array([w.safety_threshold for w in rules.warehouses], dtype=float)[:, None], n_s, 1
    )
    sw = pd.Index(wh_ids).get_indexer(stock["warehouse_id"].astype(str).to_numpy())
    ss = pd.Index(skus).get_indexer(stock["sku"].astype(str).to_numpy(dtype=object))
    ok = (sw >= 0) & (ss >= 0)
    a = pd.to_numeric(stock["available"]).to_numpy(dtype=float)
    np.add.at(avail, (sw[ok], ss[ok]), np.nan_to_num(a[ok]))
    safety_col = next((c for c in ("safety_threshold", "safety_stock") if c in stock.columns), None)
    if safety_col is not None:
        s = pd.to_numeric(stock[safety_col]).to_numpy(dtype=float)
        good = ok & ~np.isnan(s)
        safety[sw[good], ss[good]] = s[good]

    # what depends on (warehouse, SKU) only is computed on the small W × S matrices, then
    # gathered per line (L × W, contiguous)
    low_ws = avail < th.low_stock_share * safety
    cover = sc.stock_full_cover * safety
    inv_cover = np.divide(1.0, cover, out=np.full_like(cover, np.inf), where=cover > 0)
    line_avail = avail.T[l_sku]
    line_ok = line_avail >= l_qty[:, None]
    line_low = low_ws.T[l_sku]
    line_suff = line_avail - l_qty[:, None]
    line_suff *= inv_cover.T[l_sku]  # no safety stock: any stock left is full cover
    np.clip(line_suff, 0.0, 1.0, out=line_suff)
    line_suff[np.isnan(line_suff)] = 1.0  # 0 left × inf

    # per order = reduce over its run of lines (lines are sorted by order)
    holds = np.zeros((n, n_w), dtype=bool)
    low = np.zeros((n, n_w), dtype=bool)
    suff = np.zeros((n, n_w))
    all_hot = np.zeros(n, dtype=bool)
    hl = np.flatnonzero(has_lines)
    if len(hl):
        starts = l_start[hl]
        holds[hl] = np.logical_and.reduceat(line_ok, starts, axis=0)
        low[hl] = np.logical_or.reduceat(line_low, starts, axis=0)
        suff[hl] = np.minimum.reduceat(line_suff, starts, axis=0)
        hot_sku = np.isin(np.asarray(skus, dtype=object), list(hot))
        all_hot[hl] = np.logical_and.reduceat(hot_sku[l_sku], starts)

    # -- geography -------------------------------------------------------------------------
    lat, lon = col("latitude"), col("longitude")
    wlat = np.array([w.latitude for w in rules.warehouses])
    wlon = np.array([w.longitude for w in rules.warehouses])
    dist = haversine_km(lat[:, None], lon[:, None], wlat[None, :], wlon[None, :])

    # -- carriers: the best covering carrier per (order, warehouse) ------------------------
    prov_codes, provinces = _codes(_strings(orders["province"]))
    prov_codes = prov_codes[perm]
    remote_p = np.isin(provinces, rules.remote_regions)
    remote = remote_p[prov_codes] if len(provinces) else np.zeros(n, dtype=bool)
    ch_codes, channels = _codes(_strings(orders["channel"]))
    ch_codes = ch_codes[perm]
    # the choice depends only on (province, channel, warehouse): decide it once per distinct
    # (province, channel) pair, then gather
    n_p, n_c = max(len(provinces), 1), max(len(channels), 1)
    pair_p = np.repeat(np.arange(n_p), n_c)
    pair_c = np.tile(np.arange(n_c), n_p)
    table = np.full((n_p * n_c, n_w), -1, dtype=np.int16)
    priority = sorted(range(len(car_ids)), key=lambda i: (-rules.carriers[i].on_time_rate, i))
    for ci in reversed(priority):  # the highest priority is written last and wins
        cr = rules.carriers[ci]
        if cr.covers == "all":
            cov_p = np.ones(len(provinces), dtype=bool)
        else:
            cov_p = np.isin(provinces, cr.covers)
        if cr.excludes_remote:
            cov_p &= ~remote_p
        cov_p &= provinces != ""  # a blank province: not covered
        cov_c = np.ones(len(channels), dtype=bool)
        if cr.channels is not None:
            cov_c = np.isin(channels, cr.channels)
        if not len(provinces) or not len(channels):
            continue
        cov = cov_p[pair_p] & cov_c[pair_c]
        for w, wid in enumerate(wh_ids):
            if cr.warehouses == "all" or wid in cr.warehouses:
                table[cov, w] = ci
    carrier = table[prov_codes * n_c + ch_codes]
    on_time = np.append(np.array([c.on_time_rate for c in rules.carriers]), 0.0)[carrier]

    # -- score (units in config/routing.yaml) ----------------------------------------------
    dist_pts = np.where(np.isnan(dist), 100.0, np.minimum(dist / sc.distance_scale_km, 1) * 100)
    score = sc.base - sc.distance * dist_pts + sc.stock * suff * 100 + sc.on_time * on_time * 100

    # -- freight share --------------------------------------------------------------------
    goods, freight = col("goods_value"), col("freight")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(goods > 0, freight / goods, np.where(freight > 0, np.inf, 0.0))
    share = np.where(np.isnan(freight), 0.0, share)

    # -- circuit breaker -------------------------------------------------------------------
    tripped = np.zeros(n_w, dtype=bool)
    alerts = []
    if "circuit_breaker" in rules.chain:
        h = health.drop_duplicates("warehouse_id", keep="last").set_index("warehouse_id")
        sync = pd.to_datetime(h["last_stock_sync_at"], utc=True)
        fails = (
            pd.to_numeric(h["consecutive_shipping_failures"]).fillna(0).astype(int)
            if "consecutive_shipping_failures" in h.columns
            else pd.Series(0, index=h.index)
        )
        now_ts = pd.Timestamp(now_ns, tz="UTC")
        for w, wid in enumerate(wh_ids):
            last = sync.get(wid, pd.NaT)
            minutes = (now_ts - last).total_seconds() / 60 if pd.notna(last) else None
            failures = int(fails.get(wid, 0))
            facts = {
                "last_stock_sync_at": last.isoformat() if pd.notna(last) else None,
                "minutes_since_sync": None if minutes is None else round(minutes, 1),
                "stale_after_minutes": th.stock_sync_stale_minutes,
                "consecutive_shipping_failures": failures,
                "failure_limit": th.consecutive_shipping_failures,
            }
            if minutes is None:
                alerts.append((w, "no_stock_sync", facts))
            elif minutes > th.stock_sync_stale_minutes:
                alerts.append((w, "stock_sync_stale", facts))
            if failures >= th.consecutive_shipping_failures:
                alerts.append((w, "consecutive_shipping_failures", facts))
        for w, _, _ in alerts:
            tripped[w] = True
    alert_frame = pd.DataFrame(
        [{"warehouse_id": wh_ids[w], "reason": r, "facts": f} for w, r, f in alerts],
        columns=list(ALERT_COLUMNS),
    )

    # -- capacity left -------------------------------------------------------------------
    used = capacity_used or {}
    remaining = np.array(
        [max(w.daily_capacity - int(used.get(w.id, 0)), 0) for w in rules.warehouses]
    )
    day = None
    if capacity_day_offset_ns is not None:
        paid = _utc_ns(orders["paid_at"])[perm]
        paid = np.where(paid == np.iinfo(np.int64).max, now_ns, paid)
        day = (paid + capacity_day_offset_ns) // (86400 * 10**9)

    world = _World(
        rules=rules,
        n=n,
        wh_ids=wh_ids,
        car_ids=car_ids,
        dist=dist,
        holds=holds,
        low=low,
        suff=suff,
        carrier=carrier,
        score=score,
        tripped=tripped,
        national=np.array([w.is_national for w in rules.warehouses]),
        front=np.array([w.is_front for w in rules.warehouses]),
        all_hot=all_hot,
        remote=remote,
        share=share,
        has_lines=has_lines,
        l_order=l_order,
        l_sku=l_sku,
        l_qty=l_qty,
        l_weight=l_weight,
        l_start=l_start,
        l_end=l_end,
        line_ok=line_ok,
        line_low=line_low,
        avail=avail,
        skus=np.asarray(skus, dtype=object),
        remaining=remaining,
        day=day,
        perm=perm,
        prov_codes=prov_codes,
        provinces=provinces,
        goods=goods,
        freight=freight,
        paid_ns=_utc_ns(orders["paid_at"])[perm],
        channel=_strings(orders["channel"]).take(perm),
        order_no=_strings(orders["platform_order_no"]).take(perm),
    )
    return world, alert_frame


# -- the chain -------------------------------------------------------------------------------
def _line_rows(world: _World, orders_idx: np.ndarray) -> np.ndarray:
    """Indices of the lines of `orders_idx` (vectorised ranges)."""
    counts = world.l_end[orders_idx] - world.l_start[orders_idx]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(world.l_start[orders_idx] - (np.cumsum(counts) - counts), counts)
    return offsets + np.arange(total)


def _rank(score: np.ndarray, eligible: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Ranking key: eligible and not low first, then eligible low-stock ones, by score."""
    return np.where(eligible & ~low, score + _PREFER, np.where(eligible, score, -np.inf))


def _nearest(candidates: np.ndarray, dist: np.ndarray) -> np.ndarray:
    return np.argmin(np.where(candidates, np.nan_to_num(dist, nan=np.inf), np.inf), axis=1)


def _bits(mask: np.ndarray) -> np.ndarray:
    """Rows of a boolean N × W matrix as bit masks (bit w = warehouse w)."""
    packed = np.packbits(mask, axis=1, bitorder="little")  # N × ceil(W / 8) bytes
    out = packed[:, 0].astype(np.int64)
    for b in range(1, packed.shape[1]):
        out |= packed[:, b].astype(np.int64) << (8 * b)
    return out


def _run_chain(world: _World, idx: np.ndarray, st: _State) -> None:
    """Decide the orders `idx` (their previous decision is discarded), writing into `st`."""
    rules, th = world.rules, world.rules.thresholds
    m = len(idx)
    if m == 0:
        return
    take = slice(None) if m == world.n else idx  # no copy on the first, full round
    dist, holds, low = world.dist[take], world.holds[take], world.low[take]
    score, carrier, blocked = world.score[take], world.carrier[take], st.blocked[take] > 0
    healthy = ~world.tripped
    has_carrier = carrier >= 0
    eligible = holds & healthy & has_carrier & ~blocked
    preferred = eligible & ~low
    rank = _rank(score, eligible, low)
    best = np.argmax(rank, axis=1)
    has_best = eligible.any(axis=1)
    rows = np.arange(m)

    rule = np.full(m, -1, dtype=np.int16)
    decision = np.full(m, -1, dtype=np.int16)
    wh = np.full(m, -1, dtype=np.int16)
    dropped = np.full(m, -1, dtype=np.int16)
    yielded = np.zeros(m, dtype=np.int64)
    runner = np.full(m, -1, dtype=np.int16)
    open_ = np.ones(m, dtype=bool)

    def decide(mask: np.ndarray, name: str, verdict: int, where: np.ndarray | None) -> None:
        rule[mask] = _R[name]
        decision[mask] = verdict
        if where is not None:
            wh[mask] = where[mask]
        open_[mask] = False

    split_rows = np.zeros(0, dtype=np.int64)
    for name in rules.chain:
        if not open_.any():
            break
        if name == "circuit_breaker":
            if not world.tripped.any():
                continue
            # the warehouse the order would have gone to: nearest holder, health ignored
            holder = holds & has_carrier & ~blocked
            nearest = _nearest(holder, dist)
            no_dist = np.isnan(dist[rows, nearest])  # no coordinates: the best-scoring holder
            nearest = np.where(no_dist, np.argmax(np.where(holder, score, -np.inf), 1), nearest)
            affected = open_ & holder.any(axis=1) & world.tripped[nearest]
            national = eligible & world.national
            nat_best = np.argmax(_rank(score, national, low), axis=1)
            fires = affected & national.any(axis=1)
            dropped[fires] = nearest[fires]
            yielded[fires] |= _bits(national & low & (score > score[rows, nat_best][:, None]))[
                fires
            ]
            decide(fires, name, SHIP, nat_best)
        elif name == "front_hot_skus":
            within = world.front & (dist <= th.front_radius_km)
            cand = preferred & within
            hot = open_ & world.all_hot[take]
            fires = hot & cand.any(axis=1)
            choice = _nearest(cand, dist)
            # yields are recorded on every order that met one, whether a later rule decides
            closer = np.where(fires[:, None], dist < dist[rows, choice][:, None], True)
            yielded[hot] |= _bits(eligible & low & within & closer)[hot]
            decide(fires, name, SHIP, choice)
        elif name == "near_stock":
            near = dist <= th.near_km
            cand = preferred & near
            fires = open_ & cand.any(axis=1)
            choice = _nearest(cand, dist)
            closer = np.where(fires[:, None], dist < dist[rows, choice][:, None], True)
            yielded[open_] |= _bits(eligible & low & near & closer)[open_]
            decide(fires, name, SHIP, choice)
        elif name == "remote_region":
            fires = open_ & world.remote[take] & has_best
            yielded[fires] |= _bits(eligible & low & (score > score[rows, best][:, None]))[fires]
            decide(fires, name, SHIP, best)
        elif name == "freight_share":
            fires = open_ & (world.share[take] > th.freight_share)
            decide(fires, name, REVIEW, None)
        elif name == "weighted_score":
            fires = open_ & has_best
            rank2 = rank.copy()
            rank2[rows, best] = -np.inf
            second = np.argmax(rank2, axis=1)
            has_second = np.isfinite(rank[rows, second])
            runner[fires & has_second] = second[fires & has_second]
            yielded[fires] |= _bits(eligible & low & (score > score[rows, best][:, None]))[fires]
            decide(fires, name, SHIP, best)
            # no single warehouse holds it: can every line be held by some warehouse?
            rest = np.flatnonzero(open_ & world.has_lines[take])
            if len(rest):
                gidx = rest if m == world.n else idx[rest]
                lrows = _line_rows(world, gidx)
                order_of_line = np.repeat(rest, world.l_end[gidx] - world.l_start[gidx])
                line_elig = (
                    world.line_ok[lrows]
                    & healthy
                    & has_carrier[order_of_line]
                    & ~blocked[order_of_line]
                )
                gaps = np.bincount(order_of_line, weights=~line_elig.any(axis=1), minlength=m)
                feasible = np.zeros(m, dtype=bool)
                feasible[rest] = gaps[rest] == 0
                if rules.split_policy == "manual_review":
                    decide(feasible, "split_policy", REVIEW, None)
                else:
                    keep = feasible[order_of_line]
                    lrows, order_of_line = lrows[keep], order_of_line[keep]
                    line_rank = _rank(score[order_of_line], line_elig[keep], world.line_low[lrows])
                    line_wh = np.argmax(line_rank, axis=1)
                    # the primary part: the warehouse shipping the most units (ties: first)
                    qty_by = np.zeros((m, len(world.wh_ids)))
                    np.add.at(qty_by, (order_of_line, line_wh), world.l_qty[lrows])
                    decide(feasible, "split_policy", SPLIT, np.argmax(qty_by, axis=1))
                    st.line_wh[lrows] = line_wh
                    split_rows = np.unique(order_of_line)

    g = idx
    st.rule[g], st.decision[g], st.wh[g] = rule, decision, wh
    st.dropped[g], st.yielded[g], st.runner[g] = dropped, yielded, runner
    st.reason[g] = -1
    # lines follow their order's warehouse, except the parts of a split
    lrows = _line_rows(world, g)
    order_of_line = np.repeat(np.arange(m), world.l_end[g] - world.l_start[g])
    ship_line = decision[order_of_line] == SHIP
    st.line_wh[lrows[ship_line]] = wh[order_of_line[ship_line]]
    other = ~ship_line & ~np.isin(order_of_line, split_rows)
    st.line_wh[lrows[other]] = -1
    st.carrier[g] = np.where(wh >= 0, carrier[rows, np.maximum(wh, 0)], -1)


def _block_overflow(world: _World, st: _State) -> np.ndarray:
    """Find where the decisions overrun a warehouse's remaining capacity or stock, block those
    warehouses in `st.blocked` from that point of the decision order on, and return the orders
    to decide again (those assigned past the point); empty when everything fits.

    Blocking also the later orders that do not use the warehouse yet keeps them from moving
    into it next round, so the rounds converge in about one per full warehouse. It is
    conservative: capacity freed later by an earlier order leaving stays unused."""
    n_w, n = len(world.wh_ids), world.n
    assigned = st.line_wh >= 0
    uses = np.zeros((n, n_w), dtype=bool)
    ship = st.decision == SHIP
    uses[np.flatnonzero(ship), st.wh[ship]] = True
    split_lines = assigned & (st.decision[world.l_order] == SPLIT)
    uses[world.l_order[split_lines], st.line_wh[split_lines]] = True
    redo = np.zeros(n, dtype=bool)
    # capacity: the running count of a warehouse's shipments only grows, so "full" is a
    # suffix of the decision order (of each paid day): from the order after the one that
    # takes the last slot (from the start when no slot is left)
    if world.day is None:
        segments = [(0, n)]
    else:
        cuts = np.flatnonzero(world.day[1:] != world.day[:-1]) + 1
        segments = list(zip(np.r_[0, cuts].tolist(), np.r_[cuts, n].tolist(), strict=True))
    for w in range(n_w):
        left = int(world.remaining[w])
        for lo, hi in segments:  # one segment, or one per paid day of a replay
            used = np.cumsum(uses[lo:hi, w], dtype=np.int64)
            if len(used) == 0 or used[-1] < left:
                continue
            start = lo + (int(np.searchsorted(used, left, side="left")) + 1 if left > 0 else 0)
            st.blocked[start:hi, w] |= _CAPACITY
            redo[start:hi] |= uses[start:hi, w]

    # stock: cumulative quantity per (warehouse, SKU) in decision order
    n_s = world.avail.shape[1]
    lw = st.line_wh[assigned].astype(np.int64)
    key = lw * n_s + world.l_sku[assigned]
    qty = world.l_qty[assigned]
    # a stable sort of small integer keys is a radix sort in numpy: O(lines), not O(n log n)
    small = np.int16 if n_w * n_s < 2**15 else np.int64
    order = np.argsort(key.astype(small), kind="stable")
    ks, qs = key[order], qty[order]
    pos = world.l_order[assigned][order]
    if len(ks):
        cq = np.cumsum(qs)
        first = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        grp = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(ks)]))
        within = cq - (cq[first] - qs[first])[grp]
        cap = world.avail.ravel()[ks]
        # per (warehouse, SKU): the first order past the stock, the first that empties it
        cut_over = np.full(n_w * n_s, n, dtype=np.int64)
        cut_zero = np.full(n_w * n_s, n, dtype=np.int64)
        over = within > cap + 1e-9
        np.minimum.at(cut_over, ks[over], pos[over])
        empty = within >= cap - 1e-9
        np.minimum.at(cut_zero, ks[empty], pos[empty])
        exhausted = (cut_zero < n).reshape(n_w, n_s)
        if exhausted.any():
            # only lines of a SKU that some warehouse ran out of can be affected
            lines = np.flatnonzero(exhausted.any(axis=0)[world.l_sku])
            sku, line_o, line_w = world.l_sku[lines], world.l_order[lines], st.line_wh[lines]
            for w in np.flatnonzero(exhausted.any(axis=1)):
                mine = line_w == w
                hit = np.where(
                    mine, line_o >= cut_over[w * n_s + sku], line_o > cut_zero[w * n_s + sku]
                )
                st.blocked[line_o[hit], w] |= _STOCK
                redo[line_o[hit & mine]] = True
    return np.flatnonzero(redo)


def _fallback_reasons(world: _World, st: _State, idx: np.ndarray) -> np.ndarray:
    """Why nothing decided the orders `idx` (index into FALLBACK_REASONS)."""
    reason = np.full(len(idx), FALLBACK_REASONS.index("rules_exhausted"), dtype=np.int16)
    bits = np.bitwise_or.reduce(st.blocked[idx], axis=1)
    reason[(bits & _STOCK) > 0] = FALLBACK_REASONS.index("stock_exhausted")
    reason[(bits & _CAPACITY) > 0] = FALLBACK_REASONS.index("capacity")
    lrows = _line_rows(world, idx)
    order_of_line = np.repeat(np.arange(len(idx)), world.l_end[idx] - world.l_start[idx])
    held = (world.line_ok[lrows] & ~world.tripped).any(axis=1)
    gaps = np.bincount(order_of_line, weights=~held, minlength=len(idx)) > 0
    reason[gaps] = FALLBACK_REASONS.index("no_stock")
    reason[(world.carrier[idx] < 0).all(axis=1)] = FALLBACK_REASONS.index("no_carrier")
    reason[~world.has_lines[idx]] = FALLBACK_REASONS.index("no_lines")
    return reason


# -- output ---------------------------------------------------------------------------------
def _round(values: np.ndarray, digits: int) -> list:
    """Floats rounded for JSON, NaN/inf -> None."""
    v = np.round(values.astype(float), digits)
    obj = v.astype(object)
    obj[~np.isfinite(v)] = None
    return obj.tolist()


def _explain(
    world: _World, st: _State, freight_cost: np.ndarray, now_ts: pd.Timestamp
) -> np.ndarray:
    """The `inputs` dict of every decision: the deciding rule's evidence (one dict per order;
    building Python dicts is the only per-row work and is skipped with explain=False)."""
    rules, th = world.rules, world.rules.thresholds
    n = world.n
    rows = np.arange(n)
    w = np.maximum(st.wh, 0)
    has_wh = st.wh >= 0
    dist = np.where(has_wh, world.dist[rows, w], np.nan)
    on_time = np.where(
        st.carrier >= 0,
        np.append([c.on_time_rate for c in rules.carriers], np.nan)[st.carrier],
        np.nan,
    )
    out = np.empty(n, dtype=object)
    ids = world.wh_ids
    blocked = _mask_lists(_bits(st.blocked > 0), ids)
    dropped_all = [ids[i] for i in np.flatnonzero(world.tripped)]
    yielded = _mask_lists(st.yielded, ids)

    def fill(sel: np.ndarray, cols: dict[str, list | np.ndarray]) -> None:
        keys = list(cols)
        values = [c.tolist() if isinstance(c, np.ndarray) else c for c in cols.values()]
        out[sel] = [dict(zip(keys, v, strict=True)) for v in zip(*values, strict=True)]

    common_ship = {
        "distance_km": lambda s: _round(dist[s], 1),
        "stock_points": lambda s: _round(world.suff[s, w[s]] * 100, 1),
        "on_time_rate": lambda s: _round(on_time[s], 3),
        "freight_cost": lambda s: _round(freight_cost[s], 2),
        "yielded": lambda s: yielded[s],
        "blocked": lambda s: blocked[s],
    }

    for code, name in enumerate(RULE_NAMES):
        sel = np.flatnonzero(st.rule == code)
        if not len(sel):
            continue
        cols: dict[str, list | np.ndarray] = {}
        if st.decision[sel[0]] in (SHIP, SPLIT) or name in RULES[:4]:
            cols = {k: f(sel) for k, f in common_ship.items()}
        if name == "circuit_breaker":
            cols["dropped"] = [dropped_all] * len(sel)
            cols["rerouted_from"] = np.array(ids, dtype=object)[st.dropped[sel]]
        elif name == "front_hot_skus":
            cols["front_radius_km"] = [th.front_radius_km] * len(sel)
        elif name == "near_stock":
            cols["near_km"] = [th.near_km] * len(sel)
        elif name == "remote_region":
            cols["province"] = world.provinces[world.prov_codes[sel]]
        elif name == "freight_share":
            cols = {
                "freight": _round(world.freight[sel], 2),
                "goods_value": _round(world.goods[sel], 2),
                "freight_share": _round(world.share[sel], 4),
                "threshold": [th.freight_share] * len(sel),
            }
        elif name == "weighted_score":
            r = np.maximum(st.runner[sel], 0)
            cols["runner_up"] = np.where(st.runner[sel] >= 0, np.array(ids, dtype=object)[r], None)
            cols["runner_up_score"] = _round(
                np.where(st.runner[sel] >= 0, world.score[sel, r], np.nan), 2
            )
        elif name == "split_policy":
            cols = {"policy": [rules.split_policy] * len(sel), "blocked": blocked[sel]}
            is_split = st.decision[sel] == SPLIT
            if is_split.any():
                cols["parts"] = _parts(world, st, sel)
                cols["freight_cost"] = _round(freight_cost[sel], 2)
        elif name == "fallback":
            reason = np.array(FALLBACK_REASONS, dtype=object)[st.reason[sel]]
            cols = {
                "reason": reason,
                "action": [rules.fallback.action] * len(sel),
                "blocked": blocked[sel],
            }
            if rules.fallback.action == "auto_cancel":
                at = now_ts + pd.Timedelta(hours=rules.fallback.auto_cancel_after_hours or 0)
                cols["auto_cancel_at"] = [at.isoformat()] * len(sel)
        if dropped_all and name != "circuit_breaker":
            cols["dropped"] = [dropped_all] * len(sel)
        fill(sel, cols)
    return out


def _parts(world: _World, st: _State, sel: np.ndarray) -> list:
    """For each split order in `sel`: [{warehouse_id, carrier, skus, qty}] (others: None)."""
    lrows = _line_rows(world, sel)
    pos = np.repeat(np.arange(len(sel)), world.l_end[sel] - world.l_start[sel])
    frame = pd.DataFrame(
        {
            "pos": pos,
            "w": st.line_wh[lrows],
            "sku": world.l_sku[lrows],
            "qty": world.l_qty[lrows],
        }
    )
    frame = frame[frame["w"] >= 0]
    out: list = [None] * len(sel)
    # few orders are split; grouping them in Python is the explanation step, not the decision
    for (p, w), g in frame.groupby(["pos", "w"], sort=True):
        o = sel[p]
        c = world.carrier[o, w]
        part = {
            "warehouse_id": world.wh_ids[w],
            "carrier": world.car_ids[c] if c >= 0 else None,
            "skus": world.skus[g["sku"].to_numpy()].tolist(),
            "qty": float(g["qty"].sum()),
        }
        if out[p] is None:
            out[p] = []
        out[p].append(part)
    return out


def _freight_cost(world: _World, st: _State) -> np.ndarray:
    """Estimated carrier cost (yuan) of each decision: per shipment, first kg + extra kg by
    distance band, + remote surcharge; a split pays one shipment per part."""
    rules = world.rules
    n_w = len(world.wh_ids)
    first = np.array([c.freight.first_kg for c in rules.carriers])
    extra = np.array([c.freight.extra_kg for c in rules.carriers])
    surcharge = np.array([c.freight.remote_surcharge for c in rules.carriers])
    assigned = st.line_wh >= 0
    lo = world.l_order[assigned]
    lw = st.line_wh[assigned].astype(np.int64)
    kg = np.bincount(lo * n_w + lw, weights=world.l_weight[assigned], minlength=world.n * n_w)
    kg = kg.reshape(world.n, n_w)
    o, w = np.nonzero(kg > 0)
    c = world.carrier[o, w]
    valid = c >= 0
    o, w, c = o[valid], w[valid], c[valid]
    band = promise_mod.distance_band(world.dist[o, w], rules)
    cost = (
        first[c, band]
        + extra[c, band] * np.ceil(np.maximum(kg[o, w] - 1.0, 0.0))
        + np.where(world.remote[o], surcharge[c], 0.0)
    )
    total = np.bincount(o, weights=cost, minlength=world.n)
    decided = (st.decision == SHIP) | (st.decision == SPLIT)
    return np.where(decided, total, np.nan)


def route(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    stock: pd.DataFrame,
    warehouse_health: pd.DataFrame,
    rules: RoutingRules,
    now: datetime,
    capacity_used: Mapping[str, int] | None = None,
    *,
    hot_skus: Collection[str] | None = None,
    lanes: promise_mod.LaneTable | None = None,
    backlog: Mapping[str, int] | None = None,
    capacity_per_paid_day: bool = False,
    explain: bool = True,
    _depth: int = 0,
) -> RoutingResult:
    """Decide where every order ships from (see the module docstring for the chain).

    Inputs (extra columns are ignored; timestamps tz-aware, or naive = UTC):
    - orders, one row per (channel, platform_order_no): channel, platform_order_no, province,
      latitude, longitude (receiver, degrees; NaN = unknown: distance rules skip the order and
      the score counts it as far), goods_value, freight (yuan), paid_at; city, district may
      be present (not used).
    - lines: channel, platform_order_no, sku, qty; optional weight_kg (per unit, else
      rules.default_item_weight_kg). Several rows of one SKU are summed.
    - stock: warehouse_id, sku, available (unlocked quantity); optional safety_threshold (or
      safety_stock; else the warehouse's safety_threshold from the rules). A missing row = 0.
    - warehouse_health: warehouse_id, last_stock_sync_at, optional
      consecutive_shipping_failures (0 when absent). A configured warehouse without a row
      has no known sync and trips the breaker ("no_stock_sync").
    - now: the decision time (staleness, decided_at, promises).
    - capacity_used: warehouse_id -> orders already allocated today (reduces daily_capacity).
    - hot_skus: the hot SKU set; required when rules.hot_skus uses top_n (compute it with
      `routing_rules.resolve_hot_skus(rules, line_history, now)`); ignored if listed.
    - lanes: `promise.lane_hours(history)` for history-based promises; backlog: warehouse_id
      -> orders allocated but not shipped (adds queue time to the promise).
    - capacity_per_paid_day: count capacity per paid day (replays of several days) instead of
      one day for the whole batch (capacity_used then applies to every day).
    - explain=False leaves `inputs` None (the decision alone, e.g. for benchmarks).

    Output `RoutingResult.decisions`, one row per order sorted by (paid_at, channel,
    platform_order_no): channel, platform_order_no, decision (ship | split | manual_review),
    warehouse_id (for a split: the part shipping the most units), carrier, rule (the deciding
    rule: a chain rule, "split_policy" or "fallback"; "fallback:<rule>" when a fallback rule
    set decided), score (the chosen warehouse's, NaN for a review), inputs (dict: the rule's
    evidence; a split lists its parts under inputs["parts"] as [{warehouse_id, carrier, skus,
    qty}]), distance_km, freight_cost (estimated carrier cost, all
    parts), promise_hours, promise_days, promised_delivery_at, promise_source, config_version,
    decided_at. `RoutingResult.alerts`: warehouse_id, reason (stock_sync_stale |
    no_stock_sync | consecutive_shipping_failures), facts (dict, with orders_rerouted).
    """
    _require(orders, "orders", ORDER_COLUMNS)
    _require(lines, "lines", LINE_COLUMNS)
    _require(stock, "stock", STOCK_COLUMNS)
    _require(warehouse_health, "warehouse_health", HEALTH_COLUMNS)
    now_ns, now_ts = _now_ns(now)
    if rules.hot_skus.listed is not None:
        hot = frozenset(rules.hot_skus.listed)
    elif hot_skus is not None:
        hot = frozenset(hot_skus)
    else:
        raise ValueError(
            f"route(): {rules.source or 'the rules'} compute hot SKUs (hot_skus.top_n); pass "
            "hot_skus=resolve_hot_skus(rules, line_history, now)"
        )

    # the decision order: paid_at, then the natural key (input row order does not matter)
    perm, line_order = _decision_order(orders, lines)

    day_offset = None
    if capacity_per_paid_day:
        off = pd.Timestamp(now).utcoffset() if pd.Timestamp(now).tzinfo else None
        day_offset = int(off.total_seconds() * 10**9) if off is not None else 0
    world, alerts = _build_world(
        orders,
        lines,
        stock,
        warehouse_health,
        rules,
        now_ns,
        capacity_used,
        hot,
        day_offset,
        perm,
        line_order,
    )
    n, n_w = world.n, len(world.wh_ids)
    st = _State.empty(n, len(world.l_order), n_w)

    todo = np.arange(n)
    rounds = 0
    for rounds in range(1, 2 * n_w + 3):  # noqa: B007 - reported in the result
        _run_chain(world, todo, st)
        todo = _block_overflow(world, st)
        if not len(todo):
            break
    else:
        # still overflowing after every round: those orders go to the fallback
        st.decision[todo] = -1
        st.wh[todo] = -1
        st.carrier[todo] = -1
        st.line_wh[_line_rows(world, todo)] = -1

    undecided = np.flatnonzero(st.decision < 0)
    st.rule[undecided] = _R["fallback"]
    st.decision[undecided] = REVIEW
    st.reason[undecided] = _fallback_reasons(world, st, undecided)

    freight_cost = _freight_cost(world, st)
    decisions = _assemble(world, st, freight_cost, now_ts, lanes, backlog, explain)

    # alerts: how many orders each tripped warehouse sent elsewhere
    if len(alerts):
        rerouted = np.bincount(np.maximum(st.dropped, 0), weights=st.dropped >= 0, minlength=n_w)
        for i, row in alerts.iterrows():
            w = world.wh_ids.index(row["warehouse_id"])
            alerts.at[i, "facts"] = {**row["facts"], "orders_rerouted": int(rerouted[w])}

    # fallback to another rule set: route the fallback orders again with it
    fb = rules.fallback
    if fb.action == "rules" and len(undecided) and _depth < _MAX_FALLBACK_DEPTH:
        decisions = _fallback_rules(
            decisions,
            undecided,
            world,
            st,
            orders,
            lines,
            stock,
            warehouse_health,
            rules,
            now,
            capacity_used,
            hot,
            lanes,
            backlog,
            capacity_per_paid_day,
            explain,
            _depth,
        )
    return RoutingResult(decisions, alerts, rounds)


def _assemble(
    world: _World,
    st: _State,
    freight_cost: np.ndarray,
    now_ts: pd.Timestamp,
    lanes: promise_mod.LaneTable | None,
    backlog: Mapping[str, int] | None,
    explain: bool,
) -> pd.DataFrame:
    rules = world.rules
    n = world.n
    rows = np.arange(n)
    has_wh = st.wh >= 0
    w = np.maximum(st.wh, 0)
    wh_cat = pd.Categorical.from_codes(st.wh.astype(np.int64), categories=world.wh_ids)
    car_cat = pd.Categorical.from_codes(st.carrier.astype(np.int64), categories=world.car_ids)
    dist = np.where(has_wh, world.dist[rows, w], np.nan)
    score = np.where((st.decision == SHIP) | (st.decision == SPLIT), world.score[rows, w], np.nan)

    # promise: per shipment; a split promises its slowest part
    promise_in = pd.DataFrame(
        {
            "warehouse_id": wh_cat,
            "carrier": car_cat,
            "province": pd.Categorical.from_codes(world.prov_codes, world.provinces),
            "distance_km": dist,
            "is_remote": world.remote,
            "start_hour": promise_mod.start_hour_ns(world.paid_ns, now_ts.value),
        }
    )
    pr = promise_mod.promise_hours(promise_in, rules, lanes, backlog)
    hours = pr["promise_hours"].to_numpy(dtype=float).copy()
    source = pr["promise_source"].to_numpy(dtype=object)
    split = np.flatnonzero(st.decision == SPLIT)
    if len(split):
        lrows = _line_rows(world, split)
        pos = np.repeat(split, world.l_end[split] - world.l_start[split])
        lw = st.line_wh[lrows].astype(np.int64)
        pairs = np.unique(np.c_[pos[lw >= 0], lw[lw >= 0]], axis=0)
        po, pw = pairs[:, 0], pairs[:, 1]
        pc = world.carrier[po, pw]
        part_in = pd.DataFrame(
            {
                "warehouse_id": pd.Categorical.from_codes(pw, categories=world.wh_ids),
                "carrier": pd.Categorical.from_codes(pc.astype(np.int64), categories=world.car_ids),
                "province": pd.Categorical.from_codes(world.prov_codes[po], world.provinces),
                "distance_km": world.dist[po, pw],
                "is_remote": world.remote[po],
                "start_hour": promise_mod.start_hour_ns(world.paid_ns[po], now_ts.value),
            }
        )
        ph = promise_mod.promise_hours(part_in, rules, lanes, backlog)["promise_hours"]
        slowest = pd.Series(ph.to_numpy()).groupby(po).max()
        hours[slowest.index.to_numpy()] = slowest.to_numpy()
    promised = promise_mod.promised_at_ns(
        world.paid_ns, hours, now_ts.value, lanes.open_hours if lanes is not None else None
    )

    inputs = _explain(world, st, freight_cost, now_ts) if explain else np.full(n, None, object)
    return pd.DataFrame(
        {
            "channel": world.channel.to_pandas(),
            "platform_order_no": world.order_no.to_pandas(),
            "decision": pd.Categorical.from_codes(st.decision.astype(np.int64), DECISIONS),
            "warehouse_id": wh_cat,
            "carrier": car_cat,
            "rule": pd.Categorical.from_codes(st.rule.astype(np.int64), RULE_NAMES),
            "score": np.round(score, 3),
            "inputs": inputs,
            "distance_km": np.round(dist, 1),
            "freight_cost": np.round(freight_cost, 2),
            "promise_hours": np.round(hours, 2),
            "promise_days": np.round(hours / 24.0, 2),
            "promised_delivery_at": promised,
            "promise_source": source,
            "config_version": rules.version,
            "decided_at": now_ts,
        }
    )


def _fallback_rules(
    decisions: pd.DataFrame,
    undecided: np.ndarray,
    world: _World,
    st: _State,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    stock: pd.DataFrame,
    health: pd.DataFrame,
    rules: RoutingRules,
    now: datetime,
    capacity_used: Mapping[str, int] | None,
    hot: frozenset[str],
    lanes: promise_mod.LaneTable | None,
    backlog: Mapping[str, int] | None,
    capacity_per_paid_day: bool,
    explain: bool,
    depth: int,
) -> pd.DataFrame:
    """Route the fallback orders through `rules.fallback.rules_file`, with the stock and the
    capacity this batch has already taken; their rule becomes "fallback:<rule>"."""
    base = Path(rules.source).parent if rules.source else None
    path = Path(rules.fallback.rules_file or "")
    if not path.is_absolute() and base is not None:
        path = base / path
    other = load_routing_rules(path)

    # stock and capacity the decided orders of this batch use up
    assigned = st.line_wh >= 0
    n_w, n_s = len(world.wh_ids), world.avail.shape[1]
    taken = np.bincount(
        st.line_wh[assigned].astype(np.int64) * n_s + world.l_sku[assigned],
        weights=world.l_qty[assigned],
        minlength=n_w * n_s,
    ).reshape(n_w, n_s)
    stock2 = stock.copy()
    sw = pd.Index(world.wh_ids).get_indexer(stock2["warehouse_id"].astype(str).to_numpy())
    ss = pd.Index(world.skus).get_indexer(stock2["sku"].astype(str).to_numpy())
    ok = (sw >= 0) & (ss >= 0)
    avail = pd.to_numeric(stock2["available"]).to_numpy(dtype=float).copy()
    # subtract once per (warehouse, SKU): from the first stock row of the pair
    first = ~pd.Series(list(zip(sw, ss, strict=True))).duplicated().to_numpy()
    hit = ok & first
    avail[hit] -= taken[sw[hit], ss[hit]]
    stock2["available"] = avail
    used = dict(capacity_used or {})
    shipped = np.zeros(n_w, dtype=np.int64)
    ship = st.decision == SHIP
    np.add.at(shipped, st.wh[ship].astype(np.int64), 1)
    for i, wid in enumerate(world.wh_ids):
        used[wid] = used.get(wid, 0) + int(shipped[i])

    sub = orders.iloc[world.perm[undecided]]
    nested = route(
        sub,
        lines,
        stock2,
        health,
        other,
        now,
        used,
        hot_skus=hot,
        lanes=lanes,
        backlog=backlog,
        capacity_per_paid_day=capacity_per_paid_day,
        explain=explain,
        _depth=depth + 1,
    ).decisions
    nested["rule"] = "fallback:" + nested["rule"].astype(str)
    out = decisions.copy()
    for col in ("decision", "warehouse_id", "carrier", "rule", "promise_source"):
        out[col] = out[col].astype(object)
    nested_cols = [c for c in out.columns if c in nested.columns]
    values = nested[nested_cols].astype(object).to_numpy()
    for j, col in enumerate(nested_cols):
        column = out[col].to_numpy(dtype=object).copy()
        column[undecided] = values[:, j]
        out[col] = column
    return out
