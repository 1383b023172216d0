"""Benchmark: the risk scoring step (`fulfillment.risk.assess`) over N synthetic orders
(default 1,000,000) and N/2 storefront cart events, with config/risk.yaml.

    .venv/bin/python bench/risk_scoring.py [--orders 1000000] [--seed 7] [--with-model]
                                           [--out result.json]

What it does:
1. builds N orders over three days in memory, shaped like the sandbox's: two orders per three
   buyers, goods value lognormal (median ~200 yuan), discounts on 40 % of the orders (up to
   27 %, platform coupons on a quarter), 3 % MVNO phones, 5 % business addresses, 2 %
   overseas (a tenth of them without an HS code), 0.3 % of the orders in IP bursts; N/2 cart
   add/remove events of random buyers (per-buyer devices and IPs);
2. times `assess(orders, rules, events=events)`: every signal, the score, the decision and
   the JSON evidence of every fired signal;
3. prints orders/s, the decisions, how often each signal fired and the peak memory:
   tracemalloc's peak of a separate run (numpy and Python allocations made by the scorer)
   and the process's max RSS; --out writes the figures as JSON.
4. with --with-model, also times what the learned score adds when a model is stored
   (`risk_model.order_features`, the probability, `risk_model.combine`) over the same orders,
   with a model trained beforehand on the first 50,000 orders (the IP-burst farm's orders as
   "bad": speed only, the labels mean nothing).
This measures speed only: the synthetic orders carry no ground truth (recall and the honest
share held need the sandbox's latent truth, issue 12, not built yet). Inputs are generated
before the clock starts; timings are wall time, best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fulfillment.risk import assess, summarise  # noqa: E402
from fulfillment.risk_model import combine, order_features, train  # noqa: E402
from fulfillment.risk_rules import load_risk_rules  # noqa: E402

CHANNELS = ["taobao", "jd", "douyin", "pdd", "kuaishou", "youzan"]


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-11-20", tz="UTC")
    buyers = max(n * 2 // 3, 1)
    buyer = rng.integers(0, buyers, n)
    created = t0 + pd.to_timedelta(rng.integers(0, 86400 * 3, n), unit="s")
    ip = np.char.add("10.", (buyer % 16_000_000).astype(str))
    burst = rng.random(n) < 0.003
    # a farm: ~6 orders from one IP within 55 minutes
    farm = rng.integers(0, max(n // 2000, 1), n)
    farm_start = rng.integers(0, 86400 * 3 - 3600, max(n // 2000, 1))
    ip = np.where(burst, np.char.add("9.9.", farm.astype(str)), ip)
    burst_at = t0 + pd.to_timedelta(farm_start[farm] + rng.integers(0, 3300, n), unit="s")
    created = created.where(~burst, burst_at)
    phone = np.char.add("13", (buyer + 10**8).astype(str))
    mvno = rng.random(n) < 0.03
    phone = np.where(mvno, np.char.add("170", (buyer % 10**8 + 10**7).astype(str)), phone)
    overseas = rng.random(n) < 0.02
    goods = np.round(rng.lognormal(5.3, 0.9, n), 2)
    discount = np.round(goods * rng.uniform(0, 0.27, n) * (rng.random(n) < 0.4), 2)
    platform = np.where(rng.random(n) < 0.25, np.minimum(discount, 10.0), 0.0)
    orders = pd.DataFrame(
        {
            "channel": rng.choice(CHANNELS, n),
            "platform_order_no": np.char.add("O", np.arange(n).astype(str)),
            "buyer_id": np.char.add("B", buyer.astype(str)),
            "buyer_ip": ip,
            "receiver_name": "张三",
            "receiver_phone": phone,
            "receiver_address": np.where(
                rng.random(n) < 0.05, "某某科技有限公司3号楼", "幸福路8号2单元"
            ),
            "province": "浙江省",
            "country": np.where(overseas, "US", "CN"),
            "goods_value": goods,
            "discount_amount": discount,
            "platform_discount": platform,
            "shop_discount": discount - platform,
            "currency": "CNY",
            "hs_code": np.where(overseas & (rng.random(n) < 0.9), "33049900", None),
            "declared_value": np.where(overseas, goods, np.nan),
            "created_at": created,
            "paid_at": created + pd.to_timedelta(rng.integers(5, 1500, n), unit="s"),
            "prior_orders": rng.integers(0, 4, n),
        }
    )
    m = n // 2
    who = rng.integers(0, buyers, m)
    events = pd.DataFrame(
        {
            "buyer_id": np.char.add("B", who.astype(str)),
            "action": rng.choice(["cart_add", "cart_remove"], m, p=[0.85, 0.15]),
            "ip": np.char.add("10.", (who % 16_000_000).astype(str)),
            "device": np.char.add("dev-", who.astype(str)),
            "event_at": t0 + pd.to_timedelta(rng.integers(0, 86400 * 3, m), unit="s"),
        }
    )
    return orders, events


def _model_figures(
    orders: pd.DataFrame, events: pd.DataFrame, assessed: pd.DataFrame, rules, repeat: int
) -> dict:
    """Seconds and orders/s of the learned score on top of `assess` (features, probability,
    combine), with a model fitted on the first 50,000 orders."""
    first = orders.iloc[:50_000]
    part = assessed.set_index(["channel", "platform_order_no"])
    keys = pd.MultiIndex.from_frame(first[["channel", "platform_order_no"]])
    head = part.reindex(keys).reset_index()
    features = order_features(first, head, rules, events=events)
    bad = features.index.get_level_values(1).isin(
        first.loc[first["buyer_ip"].str.startswith("9.9."), "platform_order_no"]
    )
    hold = head["decision"].eq("review").to_numpy()
    model = train(features, bad, hold, first["paid_at"], rules.model)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        f = order_features(orders, assessed, rules, events=events)
        out = combine(assessed, model.probability(f), model, rules.review.threshold)
        best = min(best, time.perf_counter() - start)
    return {
        "seconds": round(best, 2),
        "orders_per_second": round(len(orders) / best),
        "held_by_model": int(
            (out["decision"].eq("review") & assessed["decision"].ne("review")).sum()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--with-model", action="store_true", help="time the learned score too")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rules = load_risk_rules()
    orders, events = synthetic(args.orders, args.seed)
    best = float("inf")
    result = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = assess(orders, rules, events=events)
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    assess(orders, rules, events=events)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result is not None
    figures = {
        "orders": args.orders,
        "events": len(events),
        "seconds": round(best, 2),
        "orders_per_second": round(args.orders / best),
        "decisions": {k: int(v) for k, v in result["decision"].value_counts().items()},
        "signals": dict(summarise(result)),
        "tracemalloc_peak_mb": round(peak / 2**20),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.with_model:
        figures["model"] = _model_figures(orders, events, result, rules, args.repeat)
        figures["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
