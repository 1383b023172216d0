"""Benchmark: routing quality on simulated outcomes. The same sandbox orders are decided three
ways and each decision's future is played by the sandbox's own delivery model
(`sandbox/outcomes.py`, the hidden truth: its carriers, capacities and noise are not the rule
file's), with the same seed and the same noise per order.

    .venv/bin/python bench/routing_quality.py [--orders 100000] [--days 7] [--seed 7]
        [--sim-seed 11] [--rules config/routing.yaml] [--history played|world]
        [--out result.json]
    .venv/bin/python bench/routing_quality.py --demo-path --orders 10000   # see demo_path()

1. the world: `sandbox.world.generate_world(seed, orders, days)`; the orders routed are the
   paid, mainland, non-POS orders not refunded before shipping; stock is the world's opening
   stock (its `inbound` stock movements: what the warehouses held before the period); every
   warehouse's stock sync is fresh (a replay, not today's stale WH-WEST).
2. what the router can see: a history world (seed + 1, a quarter of the orders, the 14 days
   before the period) gives the order lines for the hot SKUs and the delivered shipments for
   the promise lanes (`promise.lane_hours_for` with the rule file's promise settings).
   `--history played` (default): the history world's orders decided by the rules and played
   by sandbox/outcomes.py with another seed (--sim-seed + 1000): the deliveries of
   OrderPulse's own earlier decisions, which is what the warehouse holds once OrderPulse
   routes; other orders and other noise than the ones scored. `--history world`: the world
   generator's pre-drawn shipments, another delivery model (deliveries at any hour of the day,
   transit a share of a distance SLA, no carrier speeds): a promise learnt there measures the
   mismatch of two models more than the estimator.
3. three deciders, on the same orders:
   (a) rules: `fulfillment.routing.route` with the rule file, capacity per paid day (Beijing),
       decided at the period's start (each promise counts from the order's paid time);
   (b) naive: always the main warehouse (WH-EAST) and its best carrier (the rule file's
       highest on-time rate covering the province and channel), stock ignored;
   (c) oracle: the nearest warehouse whose opening stock holds the whole order, capacity
       ignored, its best carrier.
   The rules send some orders to manual review (freight share, no stock, capacity): those have
   no decision and no promise, so every policy is measured on the orders the rules shipped
   (ship or split; a split is played as one parcel from its main warehouse).
4. each decision set is played with `sandbox.outcomes.simulate_outcomes` (seed --sim-seed,
   noise keyed by order; the true warehouse capacities, so a policy that overloads a warehouse
   pays in queueing), and the bench prints, per policy: mean and p90 delivery days (paid ->
   delivered), billed freight per order, the share delivered by the rules' promise
   (`promised_delivery_at`) and the mean slack (promised − delivered, days); the ratios
   rules/naive and rules/oracle; timings and peak memory (max RSS; tracemalloc peak of the
   decide + simulate phase).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fulfillment.promise import (  # noqa: E402
    hour_of_day,
    lane_hours,
    lane_hours_for,
    promise_hours,
    promised_at_ns,
)
from fulfillment.promise_accuracy import score_promises  # noqa: E402
from fulfillment.routing import haversine_km, route  # noqa: E402
from fulfillment.routing_rules import RoutingRules, load_routing_rules, resolve_hot_skus  # noqa: E402
from sandbox import geo  # noqa: E402
from sandbox.allocations import AllocationBook  # noqa: E402
from sandbox.outcomes import order_keys, simulate_outcomes  # noqa: E402
from sandbox.world import World, generate_world  # noqa: E402

MAIN_WAREHOUSE = "WH-EAST"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def unix_s(values: pd.Series) -> np.ndarray:
    """Unix seconds of tz-aware timestamps (int64)."""
    t = pd.to_datetime(values, utc=True)
    return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


# -- inputs from the world --------------------------------------------------------------------
def order_frames(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders, lines) of the routable orders, in route()'s column names."""
    idx, ds = geo.district_index(), geo.districts()
    weight = {s.sku: float(s.weight_kg) for s in world.skus}
    rows, lines = [], []
    for o in world.orders:  # input preparation: the Order objects are Python objects
        if o.paid_at is None or o.channel == "pos" or o.country != "CN":
            continue
        kinds = {e.type for e in o.events}
        if "ship" not in kinds and kinds & {"cancel", "refund"}:
            continue
        r = o.receiver
        d = idx.get((r.province, r.city, r.district))
        lat, lon = (ds[d].latitude, ds[d].longitude) if d is not None else (np.nan, np.nan)
        rows.append(
            (o.channel, o.platform_order_no, r.province, lat, lon, float(o.goods_value),
             float(o.freight), o.paid_at)
        )  # fmt: skip
        lines += [(o.channel, o.platform_order_no, i.sku, i.qty, weight[i.sku]) for i in o.items]
    orders = pd.DataFrame(
        rows,
        columns=["channel", "platform_order_no", "province", "latitude", "longitude",
                 "goods_value", "freight", "paid_at"],
    )  # fmt: skip
    orders["paid_at"] = pd.to_datetime(orders["paid_at"], utc=True)
    lines_df = pd.DataFrame(
        lines, columns=["channel", "platform_order_no", "sku", "qty", "weight_kg"]
    )
    return orders, lines_df


def opening_stock(world: World) -> pd.DataFrame:
    """What each warehouse held before the period: the world's opening `inbound` movements."""
    rows = [(m.warehouse_id, m.sku, m.qty) for m in world.stock_movements if m.kind == "inbound"]
    stock = pd.DataFrame(rows, columns=["warehouse_id", "sku", "available"])
    stock = stock.groupby(["warehouse_id", "sku"], as_index=False)["available"].sum()
    stock["safety_threshold"] = 10
    return stock


def history(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(delivered shipments: warehouse_id, province, carrier, paid_at, delivered_at; order
    lines: sku, qty, paid_at) of a history world, as the warehouse would hold them."""
    by_key = {(o.channel, o.platform_order_no): o for o in world.orders}
    rows = []
    for s in world.shipments:
        o = by_key[(s.channel, s.platform_order_no)]
        if s.delivered_at is not None and o.paid_at is not None:
            rows.append((s.warehouse_id, o.receiver.province, s.carrier, o.paid_at, s.delivered_at))
    deliveries = pd.DataFrame(
        rows, columns=["warehouse_id", "province", "carrier", "paid_at", "delivered_at"]
    )
    lines = pd.DataFrame(
        [(i.sku, i.qty, o.paid_at) for o in world.orders if o.paid_at for i in o.items],
        columns=["sku", "qty", "paid_at"],
    )
    return deliveries, lines


def played_history(past: World, rules: RoutingRules, sim_seed: int) -> pd.DataFrame:
    """The deliveries of OrderPulse's own decisions on the history world: its orders decided by
    the rules (capacity per paid day, decided at its start, no promise lanes) and played by
    sandbox/outcomes.py with `sim_seed`. Columns: warehouse_id, province, carrier, paid_at,
    delivered_at."""
    orders, lines = order_frames(past)
    _, line_history = history(past)
    now = orders["paid_at"].min().to_pydatetime().astimezone(SHANGHAI) - timedelta(minutes=1)
    health = pd.DataFrame(
        {
            "warehouse_id": [w.id for w in rules.warehouses],
            "last_stock_sync_at": now - timedelta(minutes=2),
            "consecutive_shipping_failures": 0,
        }
    )
    hot = resolve_hot_skus(rules, line_history, past.end)
    d = route(
        orders, lines, opening_stock(past), health, rules, now,
        hot_skus=hot, capacity_per_paid_day=True, explain=False,
    ).decisions  # fmt: skip
    d = d[d["decision"].isin(["ship", "split"])].reset_index(drop=True)
    key = ["channel", "platform_order_no"]
    sub = d[key].merge(orders, on=key, how="left", validate="one_to_one")
    kg = lines.assign(kg=lines["qty"] * lines["weight_kg"]).groupby(key)["kg"].sum()
    weight = sub.merge(kg.reset_index(), on=key, how="left")["kg"].fillna(0.5).to_numpy()
    out = simulate_outcomes(
        d["warehouse_id"].astype(object).to_numpy(),
        sub["latitude"].to_numpy(),
        sub["longitude"].to_numpy(),
        sub["province"].to_numpy(),
        d["carrier"].astype(object).to_numpy(),
        unix_s(sub["paid_at"]),
        seed=sim_seed,
        weight_kg=weight,
        keys=order_keys(sub["channel"].to_numpy(), sub["platform_order_no"].to_numpy()),
    )
    return pd.DataFrame(
        {
            "warehouse_id": d["warehouse_id"].astype(object),
            "province": sub["province"],
            "carrier": d["carrier"].astype(object),
            "paid_at": sub["paid_at"],
            "delivered_at": pd.to_datetime(out.delivered_at, unit="s", utc=True),
        }
    )


def history_backtest(
    deliveries: pd.DataFrame, rules: RoutingRules, quantiles: tuple[float, ...]
) -> list[dict]:
    """What the router can check on its own data: lanes from the earlier half of the history's
    deliveries (by paid time) with the rule file's promise settings at each quantile, judged on
    the second half (share delivered by the promise, mean slack in days; deliveries without a
    lane×carrier promise of their own are skipped)."""
    paid = pd.to_datetime(deliveries["paid_at"], utc=True)
    cut = paid.sort_values().iloc[len(paid) // 2]  # the median: a few old orders skew the mean
    train, test = deliveries[(paid <= cut).to_numpy()], deliveries[(paid > cut).to_numpy()]
    paid_ns = unix_s(test["paid_at"]) * 10**9
    delivered_s = unix_s(test["delivered_at"])
    frame = test[["warehouse_id", "carrier", "province"]].assign(
        distance_km=np.nan, is_remote=False, start_hour=hour_of_day(paid_ns // 10**9)
    )
    p = rules.promise
    out = []
    for q in quantiles:
        lanes = lane_hours(
            train, quantile=q, min_samples=p.min_samples, by_paid_hour=p.by_paid_hour,
            closed_hour_share=p.closed_hour_share,
        )  # fmt: skip
        pr = promise_hours(frame, rules, lanes)
        at = promised_at_ns(
            paid_ns, pr["promise_hours"].to_numpy(float), int(paid_ns.min()), lanes.open_hours
        )
        promised_s = unix_s(pd.Series(at))
        got = (pr["promise_source"] == "lane_carrier").to_numpy()
        actual, promised = delivered_s[got], promised_s[got]
        out.append(
            {
                "quantile": q,
                "deliveries": int(got.sum()),
                "on_time_share": float((actual <= promised).mean()),
                "mean_slack_days": float((promised - actual).mean() / 86400),
            }
        )
    return out


# -- the baselines ------------------------------------------------------------------------------
def best_carrier(
    rules: RoutingRules, warehouse: np.ndarray, province: np.ndarray, channel: np.ndarray
) -> np.ndarray:
    """The rule file's highest on-time carrier covering (province, channel) at the warehouse
    (ties: the first listed), per order; None where none covers."""
    remote = set(rules.remote_regions)
    frame = pd.DataFrame({"w": warehouse, "p": province, "c": channel})
    combos = frame.drop_duplicates().reset_index(drop=True)
    best = np.full(len(combos), None, dtype=object)
    rate = np.full(len(combos), -1.0)
    for cr in rules.carriers:  # a loop over carriers (7), arrays over the combinations
        ok = np.ones(len(combos), bool)
        if cr.covers != "all":
            ok &= combos["p"].isin(cr.covers).to_numpy()
        if cr.excludes_remote:
            ok &= ~combos["p"].isin(remote).to_numpy()
        if cr.channels is not None:
            ok &= combos["c"].isin(cr.channels).to_numpy()
        if cr.warehouses != "all":
            ok &= combos["w"].isin(cr.warehouses).to_numpy()
        better = ok & (cr.on_time_rate > rate)
        best[better], rate[better] = cr.id, cr.on_time_rate
    combos["carrier"] = best
    return frame.merge(combos, on=["w", "p", "c"], how="left")["carrier"].to_numpy()


def oracle_warehouse(
    rules: RoutingRules, orders: pd.DataFrame, lines: pd.DataFrame, stock: pd.DataFrame
) -> np.ndarray:
    """The nearest warehouse whose stock holds every line of the order (stock not depleted,
    capacity ignored); the nearest national warehouse when none holds it."""
    wh_ids = [w.id for w in rules.warehouses]
    key = orders["channel"] + "\x1f" + orders["platform_order_no"]
    pos = pd.Index(key).get_indexer(lines["channel"] + "\x1f" + lines["platform_order_no"])
    need = lines.assign(pos=pos).groupby(["pos", "sku"], as_index=False)["qty"].sum()
    have = stock.pivot_table(index="sku", columns="warehouse_id", values="available", aggfunc="sum")
    have = have.reindex(columns=wh_ids).fillna(0).reindex(need["sku"]).fillna(0).to_numpy()
    short = have < need["qty"].to_numpy()[:, None]
    lacks = np.zeros((len(orders), len(wh_ids)), bool)
    np.logical_or.at(lacks, need["pos"].to_numpy(), short)
    wlat = np.array([w.latitude for w in rules.warehouses])
    wlon = np.array([w.longitude for w in rules.warehouses])
    lat = orders["latitude"].to_numpy()[:, None]
    lon = orders["longitude"].to_numpy()[:, None]
    dist = np.nan_to_num(haversine_km(lat, lon, wlat[None, :], wlon[None, :]), nan=1e9)
    national = np.array([w.is_national for w in rules.warehouses])
    fallback = np.argmin(np.where(national[None, :], dist, np.inf), axis=1)
    holds = np.where(lacks, np.inf, dist)
    choice = np.where(np.isfinite(holds.min(axis=1)), np.argmin(holds, axis=1), fallback)
    return np.array(wh_ids, dtype=object)[choice]


# -- measuring ------------------------------------------------------------------------------------
def measure(
    name: str,
    orders: pd.DataFrame,
    weight: np.ndarray,
    warehouse: np.ndarray,
    carrier: np.ndarray,
    promised_s: np.ndarray,
    seed: int,
    capacity: dict[str, float] | None = None,
) -> tuple[dict, pd.DataFrame]:
    paid_s = unix_s(orders["paid_at"])
    out = simulate_outcomes(
        warehouse,
        orders["latitude"].to_numpy(),
        orders["longitude"].to_numpy(),
        orders["province"].to_numpy(),
        carrier,
        paid_s,
        seed=seed,
        weight_kg=weight,
        keys=order_keys(orders["channel"].to_numpy(), orders["platform_order_no"].to_numpy()),
        capacity=capacity,
    )
    days = (out.delivered_at - paid_s) / 86400
    slack = (promised_s - out.delivered_at) / 86400
    figures = {
        "policy": name,
        "orders": len(days),
        "mean_days": float(days.mean()),
        "p90_days": float(np.quantile(days, 0.9)),
        "freight_per_order": float(out.freight_cost.mean()),
        "on_time_share": float((out.delivered_at <= promised_s).mean()),
        "mean_slack_days": float(slack.mean()),
        "queue_hours_mean": float((out.picked_at - out.allocated_at).mean() / 3600),
        "pickup_failures": int((out.pickup_failed_at >= 0).sum()),
    }
    frame = pd.DataFrame(
        {
            "warehouse_id": warehouse,
            "carrier": carrier,
            "days": days,
            "on_time": out.delivered_at <= promised_s,
        }
    )
    return figures, frame


def demo_path(orders: int, days: int, seed: int, rules: RoutingRules) -> str:
    """The demo's promise path without the pipeline: a world ending now, its open orders (paid,
    not shipped) decided at once with lanes from the world's own shipments (what the demo's
    warehouse holds), sent to the sandbox's WMS (`AllocationBook`, live time scale 60) and
    scored on its played deliveries on the model's clock."""
    end = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    world = generate_world(seed, orders, days, end)
    shipped = {(s.channel, s.platform_order_no) for s in world.shipments}
    frame, lines = order_frames(world)
    keys = pd.MultiIndex.from_frame(frame[["channel", "platform_order_no"]])
    frame = frame[~keys.isin(list(shipped))].reset_index(drop=True)
    deliveries, line_history = history(world)
    now = end + timedelta(minutes=10)
    health = pd.DataFrame(
        {
            "warehouse_id": [w.id for w in rules.warehouses],
            "last_stock_sync_at": now - timedelta(minutes=2),
            "consecutive_shipping_failures": 0,
        }
    )
    d = route(
        frame, lines, opening_stock(world), health, rules, now,
        hot_skus=resolve_hot_skus(rules, line_history, now),
        lanes=lane_hours_for(deliveries, rules, now), explain=False,
    ).decisions  # fmt: skip
    d = d[d["decision"].isin(["ship", "split"])].reset_index(drop=True)
    d = d.astype({"warehouse_id": object, "carrier": object})
    book = AllocationBook(world, clock=lambda: now, time_scale=60)
    sent = d[["channel", "platform_order_no", "warehouse_id", "carrier"]].assign(
        decided_at=now.isoformat()
    )
    for lo in range(0, len(sent), 1000):
        book.submit(sent.iloc[lo : lo + 1000].to_dict("records"))
    played = pd.DataFrame(book.deliveries())
    played["delivered_at"] = played["delivered_at_model"]
    accuracy = score_promises(d, played)
    return (
        f"demo path: {len(frame):,} open orders of {orders:,}, {len(d):,} shipped; "
        f"{accuracy.sentence()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7, help="the world's seed")
    parser.add_argument("--sim-seed", type=int, default=11, help="sandbox/outcomes.py's seed")
    parser.add_argument("--rules", type=Path, default=None, help="default config/routing.yaml")
    parser.add_argument(
        "--history", choices=("played", "world"), default="played",
        help="promise lanes from OrderPulse's own played deliveries or the world's shipments",
    )  # fmt: skip
    parser.add_argument(
        "--demo-path", action="store_true",
        help="only the demo's promise path (try --orders 10000): see demo_path()",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.demo_path:
        print(demo_path(args.orders, args.days, args.seed, load_routing_rules(args.rules)))
        return

    end = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    rules = load_routing_rules(args.rules)
    t0 = time.perf_counter()
    world = generate_world(args.seed, args.orders, args.days, end)
    past = generate_world(args.seed + 1, max(args.orders // 4, 2000), 14, world.start)
    orders, lines = order_frames(world)
    stock = opening_stock(world)
    deliveries, line_history = history(past)
    if args.history == "played":
        deliveries = played_history(past, rules, args.sim_seed + 1000)
    del past
    gen_s = time.perf_counter() - t0

    tracemalloc.start()
    t1 = time.perf_counter()
    now = orders["paid_at"].min().to_pydatetime().astimezone(SHANGHAI) - timedelta(minutes=1)
    health = pd.DataFrame(
        {
            "warehouse_id": [w.id for w in rules.warehouses],
            "last_stock_sync_at": now - timedelta(minutes=2),
            "consecutive_shipping_failures": 0,
        }
    )
    lanes = lane_hours_for(deliveries, rules, now)
    hot = resolve_hot_skus(rules, line_history, now)
    result = route(
        orders, lines, stock, health, rules, now,
        hot_skus=hot, lanes=lanes, capacity_per_paid_day=True, explain=False,
    )  # fmt: skip
    route_s = time.perf_counter() - t1
    d = result.decisions
    per_rule = d.groupby(["rule", "decision"], observed=True).size()
    shipped = d[d["decision"].isin(["ship", "split"])].reset_index(drop=True)
    # the same orders for every policy: those the rules shipped, in the rules' order
    key = ["channel", "platform_order_no"]
    subset = shipped[key].merge(orders, on=key, how="left", validate="one_to_one")
    kg = lines.assign(kg=lines["qty"] * lines["weight_kg"]).groupby(key)["kg"].sum()
    weight = subset.merge(kg.reset_index(), on=key, how="left")["kg"].fillna(0.5).to_numpy()
    promised = unix_s(shipped["promised_delivery_at"])

    t2 = time.perf_counter()
    province, channel = subset["province"].to_numpy(), subset["channel"].to_numpy()
    naive_wh = np.full(len(subset), MAIN_WAREHOUSE, dtype=object)
    oracle_wh = oracle_warehouse(rules, subset, lines, stock)
    policies = {
        "rules": (
            shipped["warehouse_id"].astype(object).to_numpy(),
            shipped["carrier"].astype(object).to_numpy(),
        ),
        "naive": (naive_wh, best_carrier(rules, naive_wh, province, channel)),
        "oracle": (oracle_wh, best_carrier(rules, oracle_wh, province, channel)),
    }
    figures, frames = {}, {}
    for name, (wh, car) in policies.items():
        figures[name], frames[name] = measure(
            name, subset, weight, wh, car, promised, args.sim_seed
        )
    # the naive baseline's delay is mostly WH-EAST's queue: the same without any queue
    unlimited = {w.id: 1e9 for w in rules.warehouses}
    figures["naive_noq"], _ = measure(
        "naive_noq", subset, weight, *policies["naive"], promised, args.sim_seed, unlimited
    )
    sim_s = time.perf_counter() - t2
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"world: {args.orders:,} orders over {args.days} days (seed {args.seed}); "
        f"{len(orders):,} routable, {len(shipped):,} shipped by the rules, "
        f"{int((d['decision'] == 'manual_review').sum()):,} to manual review, "
        f"{int((d['decision'] == 'split').sum()):,} split (played from the main part); "
        f"history ({args.history}): {len(deliveries):,} deliveries, "
        f"{len(lanes.by_carrier):,} lane×carrier p{lanes.quantile * 100:g}s"
    )
    print("promise sources:", shipped["promise_source"].value_counts().to_dict())
    quantiles = tuple(sorted({0.8, 0.9, 0.95, 0.96, 0.97, rules.promise.quantile}))
    backtest = history_backtest(deliveries, rules, quantiles)
    print("history backtest (lanes from the history's earlier half, judged on the later half):")
    for b in backtest:
        print(
            f"  p{b['quantile'] * 100:g}: {b['on_time_share']:.1%} on time, mean slack "
            f"{b['mean_slack_days']:.2f} d ({b['deliveries']:,} deliveries)"
        )
    print("(naive_noq: the naive decisions played with no warehouse queue at all)")
    print(f"\n{'policy':<10}{'mean d':>8}{'p90 d':>8}{'freight':>9}{'on time':>9}"
          f"{'slack d':>9}{'queue h':>9}")  # fmt: skip
    for f in figures.values():
        print(
            f"{f['policy']:<10}{f['mean_days']:>8.2f}{f['p90_days']:>8.2f}"
            f"{f['freight_per_order']:>9.2f}{f['on_time_share']:>9.1%}"
            f"{f['mean_slack_days']:>9.2f}{f['queue_hours_mean']:>9.1f}"
        )
    ratios = {}
    for other in ("naive", "oracle"):
        a, b = figures["rules"], figures[other]
        ratios[other] = {
            m: a[m] / b[m] for m in ("mean_days", "p90_days", "freight_per_order") if b[m]
        }
        print(
            f"rules/{other}: mean days {ratios[other]['mean_days']:.3f}, p90 "
            f"{ratios[other]['p90_days']:.3f}, freight {ratios[other]['freight_per_order']:.3f}"
            f" ({a['mean_days'] - b['mean_days']:+.2f} days)"
        )
    by_source = frames["rules"]["on_time"].groupby(shipped["promise_source"].astype(str)).mean()
    print("rules on time by promise source:", {k: f"{v:.1%}" for k, v in by_source.items()})
    est = float(shipped["freight_cost"].mean())
    print(f"rules' estimated freight per order {est:.2f} vs billed "
          f"{figures['rules']['freight_per_order']:.2f}")  # fmt: skip
    print("\nrules: orders and mean days per warehouse")
    print(
        frames["rules"].groupby("warehouse_id")["days"].agg(["size", "mean"]).round(2).to_string()
    )
    print("\ndecisions per rule:")
    for (rule, decision), count in per_rule.items():
        print(f"  {rule:<18}{decision:<15}{count:>10,}")
    print(
        f"\ntime: worlds {gen_s:.1f} s, route {route_s:.1f} s, baselines + 3 simulations "
        f"{sim_s:.1f} s; peak memory: tracemalloc {peak / 2**20:,.0f} MiB (decide + simulate), "
        f"max RSS {rss_mib:,.0f} MiB (whole process, worlds included)"
    )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "orders": args.orders,
                    "days": args.days,
                    "seed": args.seed,
                    "sim_seed": args.sim_seed,
                    "routable": len(orders),
                    "shipped_by_rules": len(shipped),
                    "policies": figures,
                    "history": args.history,
                    "promise": rules.promise.model_dump(),
                    "history_backtest": backtest,
                    "ratios": ratios,
                    "per_rule": {f"{r}/{dc}": int(c) for (r, dc), c in per_rule.items()},
                    "route_s": route_s,
                    "simulate_s": sim_s,
                    "tracemalloc_peak_mib": peak / 2**20,
                    "max_rss_mib": rss_mib,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
