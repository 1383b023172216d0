"""Benchmark: the routing decision step (`fulfillment.routing.route`) over N synthetic orders
(default 1,000,000) × the warehouses of config/routing.yaml, beside an arithmetic floor
measured in the same run.

    .venv/bin/python bench/routing_decisions.py [--orders 1000000] [--seed 7] [--out result.json]

What it does:
1. builds N orders in memory: receivers drawn from the real districts (cpca's table, via
   sandbox.geo, remote regions at 2 %), 1-5 lines over 300 SKUs with the sandbox's Zipf-like
   popularity (the top 50 hot), goods value and freight like the sandbox's (freight on orders
   under 99 yuan), paid over the last day; stock per warehouse and SKU (front warehouse: hot
   SKUs only; 4 % of rows under the safety stock); the sandbox's stale WH-WEST trips the
   circuit breaker. Warehouse capacities are scaled so the batch fits 1.05× (some warehouses
   overflow, so the capacity rounds run), stock so that a few SKUs run out within the batch;
2. times `route(..., explain=False)` (the decision: every rule, capacity and stock rounds,
   freight estimate, promise), then `route(..., explain=True)` (plus one `inputs` dict per
   order, the JSON evidence written to ops.routing_decisions);
3. the floor: a plain numpy haversine over the same N × W matrix plus one argmin (what any
   nearest-warehouse router must at least compute);
4. prints orders/s of each, the decisions per rule, the capacity rounds, and the peak memory:
   tracemalloc's peak of a separate explain=False run (numpy and Python allocations made by
   the router) and the process's max RSS; --out writes the figures as JSON.
Inputs are generated before the clock starts; timings are wall time, best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fulfillment.routing import haversine_km, route  # noqa: E402
from fulfillment.routing_rules import RoutingRules, load_routing_rules  # noqa: E402
from sandbox import geo  # noqa: E402
from sandbox.catalog import popularity  # noqa: E402

N_SKUS = 300
HOT = 50


def synthetic(n: int, rules: RoutingRules, seed: int, now: datetime) -> dict:
    rng = np.random.default_rng(seed)
    ds = geo.districts()
    lat_d, lon_d, weight, remote_d = geo.district_arrays()
    remote_idx = np.flatnonzero(remote_d)
    pick = rng.choice(len(ds), n, p=weight)
    is_remote = rng.random(n) < 0.02
    pick[is_remote] = rng.choice(remote_idx, int(is_remote.sum()))
    province = np.array([d.province for d in ds], dtype=object)[pick]
    lat = lat_d[pick] + rng.normal(0, 0.02, n)
    lon = lon_d[pick] + rng.normal(0, 0.02, n)
    channels = np.array(["taobao", "jd", "douyin", "pdd", "kuaishou", "youzan"], dtype=object)
    channel = channels[rng.integers(0, len(channels), n)]
    order_no = np.char.add("B", np.arange(n).astype(str)).astype(object)

    n_lines = rng.choice([1, 2, 3, 4, 5], n, p=[0.5, 0.25, 0.13, 0.08, 0.04])
    total = int(n_lines.sum())
    sku_ids = np.array([f"SK-{10001 + i}" for i in range(N_SKUS)], dtype=object)
    line_sku = rng.choice(N_SKUS, total, p=popularity(N_SKUS))
    line_qty = rng.choice([1, 1, 1, 2, 3], total)
    price = rng.uniform(15, 600, N_SKUS).round(1)
    owner = np.repeat(np.arange(n), n_lines)
    goods = np.bincount(owner, weights=price[line_sku] * line_qty, minlength=n).round(2)
    freight = np.where(goods < 99, rng.choice([6.0, 8.0, 10.0], n), 0.0)
    freight[is_remote] += 15.0
    paid = pd.Timestamp(now) - pd.to_timedelta(rng.integers(60, 86400, n), unit="s")

    orders = pd.DataFrame(
        {
            "channel": channel,
            "platform_order_no": order_no,
            "province": province,
            "latitude": lat,
            "longitude": lon,
            "goods_value": goods,
            "freight": freight,
            "paid_at": paid,
        }
    )
    lines = pd.DataFrame(
        {
            "channel": channel[owner],
            "platform_order_no": order_no[owner],
            "sku": sku_ids[line_sku],
            "qty": line_qty,
        }
    )
    # stock: demand share per SKU × orders, spread over warehouses, generous but not endless
    demand = np.bincount(line_sku, weights=line_qty, minlength=N_SKUS)
    rows = []
    for w in rules.warehouses:
        for s in range(N_SKUS):
            if w.is_front and s >= HOT:
                continue
            level = demand[s] * rng.uniform(0.3, 0.9) if rng.random() > 0.04 else rng.integers(0, 2)
            rows.append((w.id, sku_ids[s], int(level), 10))
    stock = pd.DataFrame(rows, columns=["warehouse_id", "sku", "available", "safety_threshold"])
    health = pd.DataFrame(
        {
            "warehouse_id": [w.id for w in rules.warehouses],
            "last_stock_sync_at": [
                now - timedelta(minutes=47 if w.id == "WH-WEST" else 2) for w in rules.warehouses
            ],
            "consecutive_shipping_failures": 0,
        }
    )
    return {
        "orders": orders,
        "lines": lines,
        "stock": stock,
        "health": health,
        "hot": set(sku_ids[:HOT]),
    }


def scaled(rules: RoutingRules, n: int) -> RoutingRules:
    """The configured warehouses with capacities scaled to hold 1.05 × n in total."""
    total = sum(w.daily_capacity for w in rules.warehouses)
    factor = 1.05 * n / total
    whs = [
        w.model_copy(update={"daily_capacity": max(int(w.daily_capacity * factor), 1)})
        for w in rules.warehouses
    ]
    return rules.model_copy(update={"warehouses": whs})


def best_of(repeat: int, fn):  # noqa: ANN001, ANN201
    """(best wall seconds, CPU seconds of that run, result)."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rules", type=Path, default=None, help="default config/routing.yaml")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    rules = scaled(load_routing_rules(args.rules), args.orders)
    t0 = time.perf_counter()
    data = synthetic(args.orders, rules, args.seed, now)
    gen_s = time.perf_counter() - t0
    n, n_w = args.orders, len(rules.warehouses)
    print(
        f"{n:,} orders, {len(data['lines']):,} lines, {n_w} warehouses, "
        f"{len(rules.carriers)} carriers (inputs built in {gen_s:.1f} s)"
    )

    def run(explain: bool):  # noqa: ANN202
        return route(
            data["orders"],
            data["lines"],
            data["stock"],
            data["health"],
            rules,
            now,
            hot_skus=data["hot"],
            explain=explain,
        )

    wlat = np.array([w.latitude for w in rules.warehouses])
    wlon = np.array([w.longitude for w in rules.warehouses])
    lat = data["orders"]["latitude"].to_numpy()
    lon = data["orders"]["longitude"].to_numpy()

    def floor():  # noqa: ANN202
        d = haversine_km(lat[:, None], lon[:, None], wlat[None, :], wlon[None, :])
        return np.argmin(d, axis=1)

    floor_s, floor_cpu, _ = best_of(args.repeat, floor)
    decide_s, decide_cpu, result = best_of(args.repeat, lambda: run(False))
    explain_s, explain_cpu, result = best_of(args.repeat, lambda: run(True))
    load = os.getloadavg()

    tracemalloc.start()
    run(False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    d = result.decisions
    per_rule = d.groupby(["rule", "decision"], observed=True).size()
    print()
    print(f"{'step':<46}{'wall s':>8}{'orders/s':>12}{'CPU s':>8}")
    for label, s, c in (
        ("route(explain=False): the decision", decide_s, decide_cpu),
        ("route(explain=True): + inputs dict per order", explain_s, explain_cpu),
        ("floor: numpy haversine N×W + argmin", floor_s, floor_cpu),
    ):
        print(f"{label:<46}{s:>8.2f}{n / s:>12,.0f}{c:>8.2f}")
    print(f"\ndecision / floor time: {decide_s / floor_s:.1f}×; capacity rounds: {result.rounds}")
    print(f"load average during the run: {load[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    print(f"peak memory: tracemalloc {peak / 2**20:,.0f} MiB (one explain=False run), "
          f"max RSS {rss_mib:,.0f} MiB (whole process, inputs included)")  # fmt: skip
    print("\ndecisions per rule:")
    for (rule, decision), count in per_rule.items():
        print(f"  {rule:<18}{decision:<15}{count:>10,}")
    print(f"alerts: {result.alerts[['warehouse_id', 'reason']].to_dict('records')}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "orders": n,
                    "lines": len(data["lines"]),
                    "warehouses": n_w,
                    "decide_s": decide_s,
                    "decide_orders_per_s": n / decide_s,
                    "explain_s": explain_s,
                    "explain_orders_per_s": n / explain_s,
                    "floor_s": floor_s,
                    "floor_orders_per_s": n / floor_s,
                    "decide_cpu_s": decide_cpu,
                    "explain_cpu_s": explain_cpu,
                    "floor_cpu_s": floor_cpu,
                    "load_average_1min": load[0],
                    "rounds": result.rounds,
                    "tracemalloc_peak_mib": peak / 2**20,
                    "max_rss_mib": rss_mib,
                    "per_rule": {f"{r}/{dcs}": int(c) for (r, dcs), c in per_rule.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
