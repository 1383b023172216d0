"""The learned risk score: a gradient-boosted model of "this order is fraud or coupon abuse",
trained on an earlier window of reviewed orders, added to the rules of `fulfillment.risk`.

Public entries: `order_features(orders, assessments, context=, events=)` (one row per assessed
order, columns `FEATURES`), `train(features, bad, rules_hold, settings, window)` (a
`RiskModel`), `RiskModel.hold(features, rules_hold)` and `hold_figures(held, bad)` (recall,
honest share held, precision). Pure pandas/numpy/scikit-learn; no database, no Dagster.

The features (documented for reviewers; all computed set-based over the batch and its context):
- `sig_<name>`: 1 when the rule signal fired (every signal of `fulfillment.risk_rules`), and
  `rule_score`, the rules' combined 0-100 score;
- `log_goods_value` (log1p of yuan), `discount_share` (discounts / goods),
  `platform_discount_share`;
- `pay_minute` (Beijing minute of day of the payment), `pay_delay_min` (creation to payment);
- `virtual_phone` (an MVNO prefix of the rule file);
- `buyers_on_ip`, `buyers_on_phone`, `buyers_on_address`: distinct buyers on the order's IP,
  receiver phone and receiver address (province + address) over the context, uncapped (the
  rules only see 3..20 on IP/phone/device, and nothing on addresses);
- `buyers_on_device`: distinct buyers on the most shared device its buyer used, counting only
  devices that name one household or ring (2..`identifier_max_buyers` buyers; a phone model
  thousands share counts as none: 1, the buyer alone);
- `ip_orders_day`, `buyer_orders_day`: orders from the IP / of the buyer in its Beijing day;
- `linked_buyers`, `linked_kinds`, `linked_orders_2d`: over the same identifiers (IP, phone,
  address, device, each on 2..`identifier_max_buyers` buyers), the other buyers sharing any of
  them with the order's buyer, how many kinds its buyer shares, and those buyers' orders paid
  within two days of it. A ring's accounts each share a different part of its IP, phone,
  address and device (no single one reaches the rules' three) and order within days; a
  family shares router and home and orders over months.

The model: scikit-learn's `HistGradientBoostingClassifier` with the settings of
`config/risk.yaml` `model:` (seeded). It is fitted on the first (1 - calibration_share) of the
training window by time; the decision threshold is chosen on the rest, a validation slice that
lies between the fitted orders and any later orders it is measured or used on, as the lowest
probability cut that keeps the honest orders held by rules + model within
`honest_hold_target` of the slice's honest orders (the threshold is a rank cut, not a
calibrated probability). Its version is a hash of the settings, the feature list and the
training window (`rm-<12 hex>`): the same data and settings give the same version and model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from fulfillment.risk import normalise_phone
from fulfillment.risk_rules import ALL_SIGNALS, LearnedScore, RiskRules
from kernel.timezones import BUSINESS_TIMEZONE

__all__ = [
    "FEATURES",
    "RiskModel",
    "combine",
    "hold_figures",
    "model_score",
    "model_version",
    "order_features",
    "train",
]

KEY = ["channel", "platform_order_no"]
FEATURES: tuple[str, ...] = (
    *(f"sig_{s}" for s in ALL_SIGNALS),
    "rule_score",
    "log_goods_value",
    "discount_share",
    "platform_discount_share",
    "pay_minute",
    "pay_delay_min",
    "virtual_phone",
    "buyers_on_ip",
    "buyers_on_phone",
    "buyers_on_address",
    "buyers_on_device",
    "ip_orders_day",
    "buyer_orders_day",
    "linked_buyers",
    "linked_kinds",
    "linked_orders_2d",
)


def _frame(orders: pd.DataFrame) -> pd.DataFrame:
    out = orders.copy()
    for c in ("buyer_id", "buyer_ip", "receiver_phone", "receiver_address", "province"):
        out[c] = out[c].astype("string") if c in out else pd.Series(pd.NA, index=out.index)
    for c in ("goods_value", "discount_amount", "platform_discount"):
        out[c] = pd.to_numeric(out.get(c), errors="coerce").astype(float)
    for c in ("created_at", "paid_at"):
        out[c] = pd.to_datetime(out[c], utc=True, errors="coerce")
    out["phone"] = normalise_phone(out["receiver_phone"])
    out["address"] = out["province"].fillna("") + "|" + out["receiver_address"].fillna("")
    at = out["paid_at"].fillna(out["created_at"]).dt.tz_convert(BUSINESS_TIMEZONE)
    out["day"] = at.dt.strftime("%Y-%m-%d")
    out["minute"] = at.dt.hour * 60 + at.dt.minute
    return out


def _buyers_on(orders: pd.DataFrame, around: pd.DataFrame, column: str) -> np.ndarray:
    known = around.loc[around[column].notna() & around["buyer_id"].notna(), [column, "buyer_id"]]
    counts = known.groupby(column)["buyer_id"].nunique()
    return orders[column].map(counts).fillna(0).to_numpy(dtype=float)


def _identifier_pairs(around: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
    """(buyer_id, kind, key): every IP, receiver phone, receiver address and device a buyer
    used in the context, distinct."""
    parts = [
        around[["buyer_id", c]].rename(columns={c: "key"}).assign(kind=c)
        for c in ("buyer_ip", "phone", "address")
    ]
    if events is not None and not events.empty:
        parts.append(events[["buyer_id", "device"]].rename(columns={"device": "key"}))
        parts[-1] = parts[-1].assign(kind="device")
    pairs = pd.concat(parts, ignore_index=True).dropna().astype("string").drop_duplicates()
    return pairs.loc[pairs["key"].str.len() > 0]


def _linked(
    orders: pd.DataFrame, around: pd.DataFrame, pairs: pd.DataFrame, most: int
) -> pd.DataFrame:
    """Per order, over identifiers that name one household or ring (2..`most` buyers; more is
    a device model or a NAT address): the distinct buyers on its buyer's most shared device
    (`buyers_on_device`), the other buyers sharing any identifier with its buyer
    (`linked_buyers`: a ring's accounts each share a different part of its IP, phone, address
    and device), how many kinds of identifier its buyer shares (`linked_kinds`) and the orders
    of those other buyers paid within two days of it (`linked_orders_2d`: a ring orders within
    days, a family over months)."""
    n = pairs.groupby(["kind", "key"])["buyer_id"].transform("nunique")
    shared = pairs.loc[n.between(2, most)].assign(n=n)
    device = shared.loc[shared["kind"] == "device"].groupby("buyer_id")["n"].max()
    links = shared.merge(
        shared[["kind", "key", "buyer_id"]], on=["kind", "key"], suffixes=("", "_o")
    )
    links = links.loc[links["buyer_id"] != links["buyer_id_o"]]
    per_buyer = pd.DataFrame({
        "buyers_on_device": device,
        "linked_buyers": links.groupby("buyer_id")["buyer_id_o"].nunique(),
        "linked_kinds": shared.groupby("buyer_id")["kind"].nunique(),
    })  # fmt: skip
    out = per_buyer.reindex(orders["buyer_id"].astype("string")).fillna(0)
    pair = links[["buyer_id", "buyer_id_o"]].drop_duplicates()
    mine = pd.DataFrame({
        "i": np.arange(len(orders)), "buyer_id": orders["buyer_id"].astype("string"),
        "at": orders["paid_at"].fillna(orders["created_at"]),
    })  # fmt: skip
    theirs = pd.DataFrame({
        "buyer_id_o": around["buyer_id"].astype("string"),
        "at_o": around["paid_at"].fillna(around["created_at"]),
    })  # fmt: skip
    near = mine.merge(pair, on="buyer_id").merge(theirs, on="buyer_id_o")
    near = near.loc[(near["at"] - near["at_o"]).abs() <= pd.Timedelta(days=2)]
    counts = near.groupby("i").size().reindex(np.arange(len(orders)), fill_value=0)
    out["linked_orders_2d"] = counts.to_numpy(dtype=float)
    # a buyer on no shared device still is on its own
    out["buyers_on_device"] = out["buyers_on_device"].clip(lower=1)
    return out.reset_index(drop=True)


def order_features(
    orders: pd.DataFrame,
    assessments: pd.DataFrame,
    rules: RiskRules,
    *,
    context: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The model's features for every assessed order (rows in `assessments`' order, indexed
    by channel and platform_order_no). `orders` and `context` have the columns
    `fulfillment.risk.assess` takes; `assessments` is its output for `orders`."""
    mine = _frame(orders).drop_duplicates(KEY).set_index(KEY)
    mine = mine.reindex(pd.MultiIndex.from_frame(assessments[KEY].astype(str)))
    mine = mine.reset_index()
    around = mine if context is None else pd.concat([mine, _frame(context)], ignore_index=True)
    around = around.drop_duplicates(KEY)
    goods = mine["goods_value"].fillna(0).to_numpy()
    safe = np.where(goods > 0, goods, np.nan)
    out = pd.DataFrame(index=pd.MultiIndex.from_frame(mine[KEY]))
    # the fired signals as a 0/1 matrix, from the (few) fired names only
    fired = assessments["signals"].tolist()
    lengths = np.fromiter(map(len, fired), dtype=np.int64, count=len(fired))
    rows = np.repeat(np.arange(len(fired)), lengths)
    cols = pd.Index(ALL_SIGNALS).get_indexer(list(chain.from_iterable(fired)))
    flags = np.zeros((len(fired), len(ALL_SIGNALS)))
    flags[rows[cols >= 0], cols[cols >= 0]] = 1.0
    for j, s in enumerate(ALL_SIGNALS):
        out[f"sig_{s}"] = flags[:, j]
    out["rule_score"] = assessments["score"].to_numpy(dtype=float)
    out["log_goods_value"] = np.log1p(goods)
    out["discount_share"] = np.nan_to_num(mine["discount_amount"].fillna(0).to_numpy() / safe)
    out["platform_discount_share"] = np.nan_to_num(
        mine["platform_discount"].fillna(0).to_numpy() / safe
    )
    out["pay_minute"] = mine["minute"].to_numpy(dtype=float)
    delay = (mine["paid_at"] - mine["created_at"]).dt.total_seconds() / 60
    out["pay_delay_min"] = delay.to_numpy(dtype=float)
    prefixes = tuple(rules.validation.virtual_carrier_prefixes)
    out["virtual_phone"] = mine["phone"].fillna("").str.startswith(prefixes).to_numpy(dtype=float)
    out["buyers_on_ip"] = _buyers_on(mine, around, "buyer_ip")
    out["buyers_on_phone"] = _buyers_on(mine, around, "phone")
    out["buyers_on_address"] = _buyers_on(mine, around, "address")
    most = rules.behaviour.identifier_max_buyers
    linked = _linked(mine, around, _identifier_pairs(around, events), most)
    for c in ("buyers_on_device", "linked_buyers", "linked_kinds", "linked_orders_2d"):
        out[c] = linked[c].to_numpy(dtype=float)
    per_ip_day = around.groupby(["buyer_ip", "day"]).size()
    per_buyer_day = around.groupby(["buyer_id", "day"]).size()
    out["ip_orders_day"] = (
        per_ip_day.reindex(pd.MultiIndex.from_frame(mine[["buyer_ip", "day"]])).fillna(0)
    ).to_numpy(dtype=float)
    out["buyer_orders_day"] = (
        per_buyer_day.reindex(pd.MultiIndex.from_frame(mine[["buyer_id", "day"]])).fillna(0)
    ).to_numpy(dtype=float)
    return out[list(FEATURES)]


def model_version(
    settings: LearnedScore, window: tuple[str, str], rows: int, labels: str = ""
) -> str:
    """`rm-` + 12 hex of the settings, the feature list, the training window and its size
    (and `labels`, a digest of the verdicts, when given: a new review makes a new model)."""
    record = {"settings": settings.model_dump(), "features": FEATURES, "window": window}
    record["rows"] = rows
    if labels:
        record["labels"] = labels
    blob = json.dumps(record, sort_keys=True)
    return "rm-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RiskModel:
    version: str
    threshold: float
    estimator: HistGradientBoostingClassifier
    window: tuple[str, str]  # the training window (ISO times), for the record
    # recall, honest share held and precision of rules + model on the validation slice
    validation: dict = field(default_factory=dict)

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(limits=1):
            return self.estimator.predict_proba(features[list(FEATURES)].to_numpy())[:, 1]

    def hold(self, features: pd.DataFrame, rules_hold: np.ndarray) -> np.ndarray:
        """Rules + model: held by the rules, or the model's probability above its threshold."""
        return np.asarray(rules_hold, bool) | (self.probability(features) > self.threshold)


def train(
    features: pd.DataFrame,
    bad: np.ndarray,
    rules_hold: np.ndarray,
    times: pd.Series,
    settings: LearnedScore,
    *,
    labelled: np.ndarray | None = None,
) -> RiskModel:
    """Fit on the earlier part of the window (by `times`), choose the threshold on the later
    part (the validation slice, never the orders measured on later).

    `bad`: the reviewed verdict (fraud or coupon abuse) of each row; `rules_hold`: the rules'
    decision `review`; `labelled`: the rows with a verdict to fit on (default all; in the
    warehouse only reviewed orders carry one). The threshold is the lowest that keeps the
    honest orders held by rules + model within `honest_hold_target` of the validation slice's
    honest orders; an unlabelled row counts as honest there, so the held share of the truly
    honest can only be lower."""
    times = pd.to_datetime(pd.Series(times), utc=True).reset_index(drop=True)
    bad = np.asarray(bad, bool)
    rules_hold = np.asarray(rules_hold, bool)
    labelled = np.ones(len(bad), bool) if labelled is None else np.asarray(labelled, bool)
    cut = times.quantile(1 - settings.calibration_share)
    fit = (times < cut).to_numpy()
    if (bad & fit & labelled).sum() == 0 or (~bad & fit & labelled).sum() == 0:
        raise ValueError("the training window needs both bad and honest reviewed orders")
    x = features[list(FEATURES)].to_numpy()
    # one thread: OpenMP spinning over busy cores costs more than it gains at these sizes
    with threadpool_limits(limits=1):
        estimator, p = _fit(x, bad, fit & labelled, ~fit, settings)
    threshold = _threshold(p, bad[~fit], rules_hold[~fit], settings.honest_hold_target)
    held = rules_hold[~fit] | (p > threshold)
    window = (times.min().isoformat(), times.max().isoformat())
    digest = hashlib.sha256(np.packbits(bad).tobytes() + np.packbits(labelled).tobytes())
    version = model_version(settings, window, len(times), digest.hexdigest())
    return RiskModel(
        version=version,
        threshold=threshold,
        estimator=estimator,
        window=window,
        validation=hold_figures(held, bad[~fit]),
    )


def _threshold(p: np.ndarray, bad: np.ndarray, rules_hold: np.ndarray, target: float) -> float:
    """The smallest probability cut that keeps rules + model within `target` of the honest
    orders (1.0, holding nothing more, when the rules alone use it up)."""
    honest = ~bad
    allowed = int(np.floor(target * honest.sum())) - int((rules_hold & honest).sum())
    if allowed < 0:
        return 1.0
    # the honest orders the rules let pass, most suspicious first: the cut sits on the
    # (allowed + 1)-th, so at most `allowed` of them are above it
    scores = np.sort(p[honest & ~rules_hold])[::-1]
    return float(scores[allowed]) if allowed < len(scores) else 0.0


def _fit(
    x: np.ndarray, bad: np.ndarray, fit: np.ndarray, rest: np.ndarray, settings: LearnedScore
) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    """The estimator fitted on the rows of `fit`, and its probabilities on the rows of `rest`."""
    estimator = HistGradientBoostingClassifier(
        learning_rate=settings.learning_rate,
        max_iter=settings.max_iter,
        max_leaf_nodes=settings.max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization,
        early_stopping=False,
        random_state=settings.random_state,
    ).fit(x[fit], bad[fit])
    return estimator, estimator.predict_proba(x[rest])[:, 1]


def hold_figures(held: np.ndarray, bad: np.ndarray) -> dict[str, float | int]:
    """Recall of bad orders by the queue, the share of honest orders held, and precision."""
    held, bad = np.asarray(held, bool), np.asarray(bad, bool)
    caught = int((held & bad).sum())
    honest_held = int((held & ~bad).sum())
    return {
        "orders": len(held),
        "bad": int(bad.sum()),
        "held": int(held.sum()),
        "recall": caught / bad.sum() if bad.any() else float("nan"),
        "honest_held_share": honest_held / (~bad).sum() if (~bad).any() else float("nan"),
        "precision": caught / held.sum() if held.any() else float("nan"),
    }


def model_score(p: np.ndarray, threshold: float, review_threshold: float) -> np.ndarray:
    """The model's probability on the rules' 0-100 scale: piecewise linear, 0 -> 0, its hold
    threshold -> `review_threshold`, 1 -> 100; a held order scores above `review_threshold`."""
    p = np.clip(np.asarray(p, float), 0.0, 1.0)
    t = min(max(threshold, 1e-12), 1.0)
    below = p / t * review_threshold
    above = review_threshold + (p - t) / max(1.0 - t, 1e-12) * (100.0 - review_threshold)
    score = np.where(p > t, above, below)
    score = np.where(p > t, np.maximum(score, review_threshold + 0.1), score)
    return np.round(np.clip(score, 0.0, 100.0), 1)


def combine(
    assessments: pd.DataFrame, probability: np.ndarray, model: RiskModel, review_threshold: float
) -> pd.DataFrame:
    """Rules + model on `fulfillment.risk.assess`'s output (rows aligned with `probability`):
    `score` = max(the rules' score, the model's score), `decision` review when the rules hold
    or the probability is above the model's threshold; a model hold adds the evidence
    `learned_score` (version, probability, threshold) to `signals`. Adds `rule_score`,
    `model_version` and `model_probability`."""
    out = assessments.copy()
    p = np.asarray(probability, float)
    held = p > model.threshold
    out["rule_score"] = out["score"].to_numpy(float)
    out["score"] = np.maximum(out["rule_score"], model_score(p, model.threshold, review_threshold))
    out["decision"] = np.where(out["decision"].eq("review").to_numpy() | held, "review", "pass")
    out["model_version"] = model.version
    out["model_probability"] = np.round(p, 6)
    signals = out["signals"].tolist()
    for i in np.flatnonzero(held):
        evidence = {
            "model_version": model.version,
            "probability": round(float(p[i]), 6),
            "threshold": round(model.threshold, 6),
        }
        signals[i] = {**signals[i], "learned_score": evidence}
    out["signals"] = signals
    return out
