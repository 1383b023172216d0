"""Benchmark: how well the review queue catches the sandbox's latent fraud and coupon abuse, for
the rules alone and for rules + the learned model, on a later time window the model never saw.

    .venv/bin/python bench/risk_quality.py [--orders 100000] [--days 30] [--seed 7] [--quick]
                                           [--labels all,reviewed,reviewed-pu,pipeline]
                                           [--out result.json]

What it does:
1. generates a sandbox world (`sandbox.world.generate_world`: orders, behaviour log, and the
   hidden verdicts `fraud` / `coupon_abuse` of `sandbox.fraud_actors`);
2. splits the paid orders by payment time: the first `--train-share` (default 60 %) of the
   period is the reviewed history, the rest the orders measured on;
3. scores both windows with `fulfillment.risk.assess` and `config/risk.yaml` (the training
   window with only its own orders as context; the later window with everything up to its end,
   as the scoring asset sees the past), computes `fulfillment.risk_model.order_features`;
4. trains the model on the earlier window's verdicts (standing for reviewers' outcomes):
   fitted on its first 75 %, the threshold picked on its last 25 % (the validation slice,
   between the fitted orders and the measured ones) so that rules + model hold at most
   `model.honest_hold_target` of the slice's honest orders (`fulfillment.risk_model.train`);
5. prints, for the later window only: bad orders, recall of fraud + coupon_abuse by the queue,
   the share of honest orders held, precision, for the rules alone and for rules + model; and
   how many bad orders fired no signal and how many honest ones fired one (the truth is not
   the rules restated). `--quick` is a 6,000-order world over 6 days (for the test).
`--labels reviewed`: only the orders the rules held carry a verdict (a reviewer's decision),
the rest are unlabelled (not fitted on, counted as honest when the cut is chosen);
`--labels reviewed-pu` fits on every order, the unreviewed ones as honest. `--labels pipeline`
trains as `ops/risk_model` does, on what the merchant knows at the training cut: reviewers'
decisions on the orders the rules held (the verdict), the chargebacks and audit verdicts of
`sandbox.risk_feedback` reported before the cut (noisy: friendly fraud, a reviewer who errs),
and nothing else; only orders paid before the label window closed (`model.label_window_days`
before the cut) are trained on, each bad when intercepted, charged back or audited bad, else
honest; the cut is chosen on the last 25 % of those.
Nothing is tuned on the later window: the thresholds come from the rule file and the training
window (the validation slice's own figures are printed beside, as `validation`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fulfillment.risk import assess  # noqa: E402
from fulfillment.risk_model import hold_figures, order_features, train  # noqa: E402
from fulfillment.risk_rules import RiskRules, load_risk_rules  # noqa: E402
from sandbox.world import VERDICTS, World, generate_world  # noqa: E402

LABELS = ("all", "reviewed", "reviewed-pu", "pipeline")

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def order_frame(world: World) -> pd.DataFrame:
    """The paid orders in `assess`'s input shape, with their hidden verdict (`bad`)."""
    rows = []
    for o in world.orders:
        if o.paid_at is None:
            continue
        platform = float(sum(c.amount for c in o.coupons if c.issuer == "platform"))
        shop = float(sum(c.amount for c in o.coupons if c.issuer == "shop"))
        customs = o.customs
        rows.append({
            "channel": o.channel, "platform_order_no": o.platform_order_no,
            "buyer_id": o.buyer_id, "buyer_ip": o.buyer_ip, "receiver_name": o.receiver.name,
            "receiver_phone": o.receiver.phone, "receiver_address": o.receiver.address,
            "province": o.receiver.province, "country": o.country,
            "goods_value": float(o.goods_value), "discount_amount": platform + shop,
            "platform_discount": platform, "shop_discount": shop, "currency": "CNY",
            "hs_code": customs.hs_code if customs else None,
            "declared_value": (
                float(customs.declared_value)
                if customs and customs.declared_value is not None else None
            ),
            "created_at": o.created_at, "paid_at": o.paid_at,
            "bad": any(v in o.labels for v in VERDICTS),
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["paid_at"] = pd.to_datetime(frame["paid_at"], utc=True)
    return frame


def feedback_bad(world: World, keys: pd.MultiIndex, until: pd.Timestamp) -> np.ndarray:
    """Per key: a chargeback or a bad audit verdict reported before `until`."""
    said_bad = {
        (f.channel, f.platform_order_no)
        for f in world.risk_feedback
        if f.reported_at < until and f.verdict != "honest"
    }
    return np.fromiter((k in said_bad for k in keys), bool, len(keys))


def pipeline_labels(
    world: World,
    keys: pd.MultiIndex,
    bad: np.ndarray,
    rules_hold: np.ndarray,
    paid: pd.Series,
    cut: pd.Timestamp,
    window_days: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(bad, trained-on) as the merchant knows them at `cut`: intercepted by a reviewer (a
    held order's verdict), charged back or audited bad before `cut`; trained on only when paid
    before the label window closed."""
    closed = (paid < cut - pd.Timedelta(days=window_days)).to_numpy()
    known_bad = (rules_hold & bad) | feedback_bad(world, keys, cut)
    return known_bad, closed


def _scored(
    orders: pd.DataFrame, context: pd.DataFrame, events: pd.DataFrame, rules: RiskRules
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    inputs = orders.drop(columns="bad")
    assessed = assess(inputs, rules, context=context.drop(columns="bad"), events=events)
    features = order_features(inputs, assessed, rules, context=context, events=events)
    bad = (
        orders.set_index(["channel", "platform_order_no"])["bad"]
        .reindex(features.index)
        .to_numpy(dtype=bool)
    )
    return assessed, features, bad


def measure(
    orders: int,
    days: int,
    seed: int,
    train_share: float = 0.6,
    rules: RiskRules | None = None,
    labels: str = "all",
) -> dict:
    """Generate, split, score, train and measure; returns the figures and the later window's
    rows (`test`: key, bad, signals, rules_hold, model_hold)."""
    return measure_each(orders, days, seed, train_share, rules, (labels,))[0]


def measure_each(
    orders: int,
    days: int,
    seed: int,
    train_share: float = 0.6,
    rules: RiskRules | None = None,
    labels: tuple[str, ...] = ("all",),
) -> list[dict]:
    """`measure` for each way of labelling the training window, on one world."""
    rules = rules or load_risk_rules()
    clock = {}
    t = time.perf_counter()
    world = generate_world(seed=seed, orders=orders, days=days, end=END)
    frame = order_frame(world)
    events = pd.DataFrame([asdict(e) for e in world.behaviour_log]).rename(
        columns={"at": "event_at"}
    )
    events["event_at"] = pd.to_datetime(events["event_at"], utc=True)
    clock["world_s"] = time.perf_counter() - t
    # the sold period (world.start may reach back further for a planted region's history)
    start = pd.Timestamp(world.end) - pd.Timedelta(days=days)
    cut = start + (pd.Timestamp(world.end) - start) * train_share
    early = frame.loc[frame["paid_at"] < cut].reset_index(drop=True)
    later = frame.loc[frame["paid_at"] >= cut].reset_index(drop=True)

    t = time.perf_counter()
    tr_assessed, tr_features, truly_bad = _scored(
        early, early, events.loc[events["event_at"] < cut], rules
    )
    te_assessed, te_features, te_bad = _scored(later, frame, events, rules)
    clock["assess_s"] = time.perf_counter() - t
    tr_hold = tr_assessed["decision"].eq("review").to_numpy()
    paid = early.set_index(["channel", "platform_order_no"])["paid_at"].reindex(tr_features.index)
    rules_hold = te_assessed["decision"].eq("review").to_numpy()
    quiet = te_assessed["signals"].map(len).eq(0).to_numpy()

    results = []
    for how in labels:
        t = time.perf_counter()
        tr_bad = truly_bad
        # "reviewed": a verdict only where the rules held the order (what reviewers decide);
        # "reviewed-pu": the same verdicts, every other order fitted on as honest
        labelled = tr_hold if how == "reviewed" else np.ones(len(tr_bad), bool)
        if how == "reviewed-pu":
            tr_bad = tr_bad & tr_hold
        rows = np.ones(len(tr_bad), bool)
        if how == "pipeline":
            tr_bad, rows = pipeline_labels(
                world, tr_features.index, tr_bad, tr_hold, paid, cut, rules.model.label_window_days
            )
        model = train(
            tr_features[rows],
            tr_bad[rows] & labelled[rows],
            tr_hold[rows],
            paid[rows].reset_index(drop=True),
            rules.model,
            labelled=labelled[rows],
        )
        seconds = {**clock, "train_s": time.perf_counter() - t}
        both_hold = model.hold(te_features, rules_hold)
        test = pd.DataFrame({
            "channel": te_assessed["channel"],
            "platform_order_no": te_assessed["platform_order_no"], "bad": te_bad,
            "signals": te_assessed["signals"], "rules_hold": rules_hold, "model_hold": both_hold,
        })  # fmt: skip
        results.append({
            "orders": orders,
            "days": days,
            "seed": seed,
            "train_window": [start.isoformat(), cut.isoformat()],
            "test_window": [cut.isoformat(), pd.Timestamp(world.end).isoformat()],
            "train_orders": len(early),
            "train_bad": int((tr_bad & rows).sum()),  # as labelled (pipeline: known at the cut)
            "trained_rows": int(rows.sum()),
            "trained_truly_bad": int((truly_bad & rows).sum()),
            "labels": how,
            "train_labelled": int((labelled & rows).sum()),
            "model_version": model.version,
            "model_window": list(model.window),  # fit + validation: all before the test window
            "model_threshold": round(model.threshold, 6),
            "validation": model.validation,
            "rules": hold_figures(rules_hold, te_bad),
            "rules_and_model": hold_figures(both_hold, te_bad),
            "bad_firing_no_signal": int((te_bad & quiet).sum()),
            "honest_firing_a_signal": int((~te_bad & ~quiet).sum()),
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "test": test,
        })  # fmt: skip
    return results


def _print(result: dict) -> None:
    print(
        f"world: {result['orders']:,} orders over {result['days']} days (seed {result['seed']});"
        f" trained on {result['train_orders']:,} paid orders ({result['train_bad']} bad) paid"
        f" {result['train_window'][0][:16]} .. {result['train_window'][1][:16]};"
        f" labels: {result['labels']} ({result['train_labelled']:,} labelled)"
    )
    print(
        f"trained on {result['trained_rows']:,} orders paid {result['model_window'][0][:16]} .."
        f" {result['model_window'][1][:16]}: {result['train_bad']} labelled bad,"
        f" {result['trained_truly_bad']} truly bad"
    )
    print(
        f"model {result['model_version']} threshold {result['model_threshold']}; measured on"
        f" {result['rules']['orders']:,} later orders ({result['rules']['bad']} bad)"
    )
    print(f"{'':22}{'recall':>9}{'honest held':>13}{'precision':>11}{'held':>7}")
    rows = (
        ("validation (train)", result["validation"]),
        ("rules", result["rules"]),
        ("rules_and_model", result["rules_and_model"]),
    )
    for name, f in rows:
        print(
            f"{name:22}{f['recall']:>9.1%}{f['honest_held_share']:>13.2%}"
            f"{f['precision']:>11.1%}{f['held']:>7}"
        )
    print(
        f"bad orders firing no signal: {result['bad_firing_no_signal']}; honest orders firing a"
        f" signal: {result['honest_firing_a_signal']}; seconds: {result['seconds']}"
    )


def _labels(text: str) -> tuple[str, ...]:
    chosen = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in chosen if t not in LABELS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(LABELS)}")
    return chosen


def main(argv: list[str] | None = None) -> dict | list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-share", type=float, default=0.6)
    parser.add_argument("--quick", action="store_true", help="6,000 orders over 6 days")
    parser.add_argument(
        "--labels",
        type=_labels,
        default=("all",),
        help="comma-separated, each measured on the same world: all (every order's verdict), "
        "reviewed (only the orders the rules held), reviewed-pu (those, every other order "
        "taken as honest), pipeline (reviews, chargebacks, audits; closed label window)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.orders, args.days = 6000, 6
    results = measure_each(args.orders, args.days, args.seed, args.train_share, labels=args.labels)
    for result in results:
        _print(result)
    if args.out:
        printable = [{k: v for k, v in r.items() if k != "test"} for r in results]
        args.out.write_text(json.dumps(printable, indent=1, default=str) + "\n")
    return results[0] if len(results) == 1 else results


if __name__ == "__main__":
    main()
