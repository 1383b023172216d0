"""Risk interception (风控): for every paid order a score 0–100, the signals that fired with
their evidence, and whether a person must review it before it ships.

One public entry: `assess(orders, rules, context=..., events=...)`. Pure (no database, no
Dagster) and vectorised: every signal is array work over the whole batch (groupby, sorted
windows, `merge_asof`); Python touches single rows only to write the evidence of the orders a
signal fired for.

Inputs (pandas frames, column names of `intermediate.int_orders`):
- `orders`: the orders to assess: channel, platform_order_no, buyer_id, buyer_ip,
  receiver_name, receiver_phone, receiver_address, province, country, goods_value,
  discount_amount (or platform_discount + shop_discount), platform_discount, currency, hs_code,
  declared_value, created_at, paid_at; optional `prior_orders` (the buyer's orders before this
  one in the whole history; without it, counted in `context`).
- `context`: the orders around them (same columns; the assessed orders are added to it): the
  IP-per-hour windows, the daily subsidy, coupon stacking and shared phones count over it.
- `events`: the storefront behaviour log (buyer_id, action, ip, device, event_at): cart bursts
  and shared devices/IPs.

The signals (weights, lists and thresholds in `config/risk.yaml`):
- validation: `missing_required_fields` (a required field empty, a CN mobile number not 11
  digits), `b2b_address` (business-address words; tag `b2b`), `virtual_carrier_phone` (MVNO
  prefix; action `needs_second_verification`), `big_first_order` (no earlier order of the buyer
  and goods above `first_order_yuan`);
- behaviour: `ip_burst` (more than `orders_per_ip_hour` orders from one IP in some 60 minutes
  holding this order), `cart_churn` (more than `cart_events_per_minute` cart add/remove events
  of the buyer in some minute, within `cart_lookback_minutes` before the order), `night_payment`
  (paid in [night.start, night.end) Beijing time), `shared_device` / `shared_ip` /
  `shared_receiver_phone` (at least `shared_buyers` distinct buyers on one identifier, and at
  most `identifier_max_buyers`: more is a device model or a NAT address, not an identifier);
- coupons: `daily_subsidy_share` (the buyer's discounts in a Beijing day above `subsidy_share`
  of that day's goods value), `coupon_stacking` (platform coupons on `stacked_channels` or more
  channels in one Beijing day);
- cross-border: `customs_incomplete` (country not `home_country` and a customs field missing,
  or an HS code that does not match `hs_code_pattern`).

Score: the fired weights combined as independent evidence, 100 × (1 − Π (1 − w/100)), rounded
to 0.1: bounded 0..100 and monotone in the signals. Decision `review` when the score is above
`review.threshold` or a signal of `review.always` fired, else `pass`. The same inputs give the
same output whatever the row order (output sorted by channel, platform_order_no).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fulfillment.risk_rules import ALL_SIGNALS, RiskRules, load_risk_rules
from kernel.timezones import BUSINESS_TIMEZONE

__all__ = ["OUTPUT_COLUMNS", "assess", "load_risk_rules", "normalise_phone"]

OUTPUT_COLUMNS = (
    "channel",
    "platform_order_no",
    "score",
    "signals",
    "decision",
    "b2b",
    "needs_second_verification",
)
KEY = ["channel", "platform_order_no"]
_TEXT = (
    "buyer_id",
    "buyer_ip",
    "receiver_name",
    "receiver_phone",
    "receiver_address",
    "province",
    "country",
    "currency",
    "hs_code",
)
_NUMBERS = (
    "goods_value",
    "discount_amount",
    "platform_discount",
    "shop_discount",
    "declared_value",
)
_TIMES = ("created_at", "paid_at")
_CART_ACTIONS = ("cart_add", "cart_remove")


# ---------------------------------------------------------------- normalising the inputs


def normalise_phone(phones: pd.Series) -> pd.Series:
    """Digits only, without a leading 86 / +86 / 0086 country code (None stays NA)."""
    digits = phones.astype("string").str.replace(r"\D", "", regex=True)
    return digits.str.replace(r"^(?:0086|86)(?=1\d{10}$)", "", regex=True).replace("", pd.NA)


def _blank(values: pd.Series) -> pd.Series:
    """True where a value is missing or only whitespace."""
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        return values.isna() | (values.astype("string").str.strip() == "").fillna(True)
    return values.isna()


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in _TEXT:
        if column not in out:
            out[column] = pd.NA
        out[column] = out[column].astype("string")
    for column in _NUMBERS:
        if column not in out:
            out[column] = np.nan
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    for column in _TIMES:
        if column not in out:
            out[column] = pd.NaT
        out[column] = pd.to_datetime(out[column], utc=True, errors="coerce")
    for column in KEY:
        out[column] = out[column].astype(str)
    # the discounts: the total, or the parts when the total is missing
    parts = out["platform_discount"].fillna(0) + out["shop_discount"].fillna(0)
    out["discount_amount"] = out["discount_amount"].fillna(parts)
    out["phone"] = normalise_phone(out["receiver_phone"])
    # the Beijing day of the payment (of the creation while unpaid)
    at = out["paid_at"].fillna(out["created_at"])
    local = at.dt.tz_convert(BUSINESS_TIMEZONE).dt.tz_localize(None)
    out["day"] = (local - pd.Timestamp(0)) // pd.Timedelta(days=1)  # days since 1970-01-01
    return out


def _with_context(orders: pd.DataFrame, context: pd.DataFrame | None) -> pd.DataFrame:
    if context is None or context.empty:
        return orders
    frame = pd.concat([orders, _prepare(context)], ignore_index=True)
    return frame.drop_duplicates(KEY, keep="first").reset_index(drop=True)


def _seconds(times: pd.Series) -> np.ndarray:
    epoch = pd.Timestamp(0, tz="UTC")
    return ((times - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


# ---------------------------------------------------------------- windows


def _window_counts(groups: pd.Series, times: pd.Series, width_s: int) -> pd.DataFrame:
    """For each row (with a group and a time): the largest number of rows of its group inside
    one window [t, t + width) that holds it (`count`), and that window's start (`start`).

    Sort + searchsorted + a sparse table for the range maximum: O(n log n), no Python loop over
    rows. Rows without a group or a time get count 0."""
    out = pd.DataFrame({"count": np.zeros(len(groups), dtype=np.int64)}, index=groups.index)
    out["start"] = pd.Series(pd.NaT, index=groups.index, dtype="datetime64[ns, UTC]")
    valid = (groups.notna() & times.notna()).to_numpy()
    if not valid.any():
        return out
    g = pd.factorize(groups[valid])[0].astype(np.int64)
    t = _seconds(times[valid])
    t0 = int(t.min())
    t = t - t0
    # groups never share a window: offset each group beyond any span of the data
    span = int(t.max()) + width_s + 1
    key = g * span + t
    order = np.argsort(key, kind="stable")
    k = key[order]
    n = len(k)
    # the window starting at row j holds rows j .. end_j - 1
    size = np.searchsorted(k, k + width_s, side="left") - np.arange(n)
    # row i lies in the windows starting at j in [lo_i, i]
    lo = np.searchsorted(k, k - width_s, side="right")
    best = _range_max(size * (n + 1) + np.arange(n), lo, np.arange(n))
    count, start_row = best // (n + 1), best % (n + 1)
    rows = np.flatnonzero(valid)[order]
    out.iloc[rows, 0] = count
    seconds = k[start_row] - g[order] * span + t0
    out.iloc[rows, 1] = pd.to_datetime(seconds, unit="s", utc=True)
    return out


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo_i .. hi_i]) for every i (inclusive bounds), with a sparse table."""
    table = [values]
    width = 1
    while width * 2 <= len(values):
        prev = table[-1]
        table.append(np.maximum(prev[: len(prev) - width], prev[width:]))
        width *= 2
    length = hi - lo + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty(len(lo), dtype=values.dtype)
    for p in np.unique(level):
        at = level == p
        row = table[p]
        out[at] = np.maximum(row[lo[at]], row[hi[at] - (1 << p) + 1])
    return out


# ---------------------------------------------------------------- the signals


def _validation(
    orders: pd.DataFrame, history: pd.DataFrame, rules: RiskRules
) -> dict[str, tuple[pd.Series, list]]:
    v = rules.validation
    fired: dict[str, tuple[pd.Series, list]] = {}

    # required fields, and a domestic mobile number of 11 digits starting with 1
    missing = pd.DataFrame({f: _blank(orders[f]) for f in v.required_fields}, index=orders.index)
    domestic = (
        orders["country"]
        .fillna(rules.cross_border.home_country)
        .str.upper()
        .eq(rules.cross_border.home_country.upper())
    )
    bad_phone = (
        domestic
        & orders["phone"].notna()
        & ~orders["phone"].str.fullmatch(r"1\d{10}").fillna(False).astype(bool)
    )
    if "goods_value" in v.required_fields:
        bad_value = orders["goods_value"].notna() & (orders["goods_value"] <= 0)
    else:
        bad_value = pd.Series(False, index=orders.index)
    mask = missing.any(axis=1) | bad_phone | bad_value
    names = np.array(missing.columns)
    missing_rows = missing.to_numpy(dtype=bool)
    evidence = []
    for i in np.flatnonzero(mask.to_numpy()):
        item: dict[str, Any] = {}
        gone = names[missing_rows[i]].tolist()
        if gone:
            item["missing"] = gone
        malformed = []
        if bad_phone.iat[i]:
            malformed.append("receiver_phone")
        if bad_value.iat[i]:
            malformed.append("goods_value")
        if malformed:
            item["malformed"] = malformed
        evidence.append(item)
    fired["missing_required_fields"] = (mask, evidence)

    # business-address words -> the b2b tag
    words = sorted(set(v.business_address_words), key=lambda w: (-len(w), w))
    pattern = "|".join(re.escape(w) for w in words)
    address = orders["receiver_address"].fillna("")
    mask = address.str.contains(pattern, regex=True)
    found = address[mask].str.findall(pattern)
    fired["b2b_address"] = (
        mask,
        [{"tag": "b2b", "words": sorted(set(f))} for f in found],
    )

    # virtual-carrier prefixes -> second verification
    prefixes = sorted(v.virtual_carrier_prefixes, key=lambda p: (-len(p), p))
    prefix = orders["phone"].str.extract(f"^({'|'.join(prefixes)})", expand=False)
    mask = prefix.notna() & orders["phone"].str.len().eq(11).fillna(False)
    fired["virtual_carrier_phone"] = (
        mask,
        [{"prefix": p, "action": "needs_second_verification"} for p in prefix[mask]],
    )

    # the buyer's first order, and a big one
    if "prior_orders" in orders:
        prior = pd.to_numeric(orders["prior_orders"], errors="coerce").fillna(0)
    else:
        prior = _earlier_orders(orders, history)
    mask = orders["buyer_id"].notna() & prior.eq(0) & (orders["goods_value"] > v.first_order_yuan)
    fired["big_first_order"] = (
        mask,
        [
            {"goods_value": _num(g), "threshold": v.first_order_yuan, "prior_orders": 0}
            for g in orders.loc[mask, "goods_value"]
        ],
    )
    return fired


def _earlier_orders(orders: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """How many orders of the same buyer in `history` were created before each order."""
    h = history.loc[history["buyer_id"].notna() & history["created_at"].notna()]
    h = h.sort_values(["buyer_id", "created_at"])
    times = h.groupby("buyer_id", sort=False)["created_at"]
    # the buyer's rank among its own orders: merge_asof finds the last one strictly before
    ranked = h.assign(rank=times.cumcount())[["buyer_id", "created_at", "rank"]]
    left = orders[["buyer_id", "created_at"]].reset_index()
    left = left.loc[left["buyer_id"].notna() & left["created_at"].notna()]
    merged = pd.merge_asof(
        left.sort_values("created_at"),
        ranked.sort_values("created_at"),
        on="created_at",
        by="buyer_id",
        direction="backward",
        allow_exact_matches=False,
    )
    counts = pd.Series(0.0, index=orders.index)
    counts.loc[merged["index"].to_numpy()] = (merged["rank"].fillna(-1) + 1).to_numpy()
    return counts


def _behaviour(
    orders: pd.DataFrame, context: pd.DataFrame, events: pd.DataFrame, rules: RiskRules
) -> dict[str, tuple[pd.Series, list]]:
    b = rules.behaviour
    fired: dict[str, tuple[pd.Series, list]] = {}
    keys = orders.set_index(KEY).index

    # more than N orders from one IP within an hour (over the context)
    window = _window_counts(context["buyer_ip"], context["created_at"], 3600)
    window.index = context.set_index(KEY).index
    window = window.reindex(keys)
    mask = pd.Series((window["count"] > b.orders_per_ip_hour).to_numpy(), index=orders.index)
    fired["ip_burst"] = (
        mask,
        [
            {"ip": ip, "orders_in_hour": int(n), "window_start": _iso(s)}
            for ip, n, s in zip(
                orders.loc[mask, "buyer_ip"],
                window["count"].to_numpy()[mask.to_numpy()],
                window["start"].to_numpy()[mask.to_numpy()],
                strict=True,
            )
        ],
    )

    # cart add/remove bursts of the buyer shortly before the order
    fired["cart_churn"] = _cart_churn(orders, events, rules)

    # payment at night, Beijing time
    start, end = b.night.minutes()
    local = orders["paid_at"].dt.tz_convert(BUSINESS_TIMEZONE)
    minute = local.dt.hour * 60 + local.dt.minute
    inside = (
        (minute >= start) & (minute < end) if start < end else (minute >= start) | (minute < end)
    )
    mask = inside.fillna(False).astype(bool)
    fired["night_payment"] = (
        mask,
        [{"paid_at_beijing": t.strftime("%Y-%m-%d %H:%M")} for t in local[mask]],
    )

    # several buyers on one identifier
    ip_sources = [context[["buyer_ip", "buyer_id"]].rename(columns={"buyer_ip": "ident"})]
    if not events.empty:
        ip_sources.append(events[["ip", "buyer_id"]].rename(columns={"ip": "ident"}))
    fired["shared_ip"] = _shared(orders, "buyer_ip", pd.concat(ip_sources), "ip", rules)
    devices = _device_of_buyer(events)
    with_device = orders.merge(devices, on="buyer_id", how="left").set_index(orders.index)
    device_pairs = (
        events[["device", "buyer_id"]].rename(columns={"device": "ident"})
        if not events.empty
        else pd.DataFrame({"ident": [], "buyer_id": []})
    )
    fired["shared_device"] = _shared(with_device, "device", device_pairs, "device", rules)
    phone_pairs = context[["phone", "buyer_id"]].rename(columns={"phone": "ident"})
    fired["shared_receiver_phone"] = _shared(orders, "phone", phone_pairs, "receiver_phone", rules)
    return fired


def _device_of_buyer(events: pd.DataFrame) -> pd.DataFrame:
    """Every device a buyer used, one row per (buyer, device)."""
    if events.empty:
        return pd.DataFrame({"buyer_id": pd.Series(dtype="string"), "device": []})
    pairs = events.loc[events["device"].notna() & events["buyer_id"].notna()]
    pairs = pairs[["buyer_id", "device"]].drop_duplicates()
    # a buyer with several devices: the most shared one speaks (deterministic: then by name)
    share = pairs.groupby("device")["buyer_id"].transform("nunique")
    pairs = pairs.assign(share=share).sort_values(["buyer_id", "share", "device"])
    return pairs.drop_duplicates("buyer_id", keep="last")[["buyer_id", "device"]]


def _shared(
    orders: pd.DataFrame, column: str, pairs: pd.DataFrame, label: str, rules: RiskRules
) -> tuple[pd.Series, list]:
    b = rules.behaviour
    pairs = pairs.loc[pairs["ident"].notna() & pairs["buyer_id"].notna()]
    buyers = pairs.drop_duplicates().groupby("ident")["buyer_id"].nunique()
    n = orders[column].map(buyers).fillna(0).astype(int)
    mask = (n >= b.shared_buyers) & (n <= b.identifier_max_buyers) & orders["buyer_id"].notna()
    return mask, [
        {label: ident, "buyers": int(k)}
        for ident, k in zip(orders.loc[mask, column], n[mask], strict=True)
    ]


def _cart_churn(
    orders: pd.DataFrame, events: pd.DataFrame, rules: RiskRules
) -> tuple[pd.Series, list]:
    b = rules.behaviour
    none = pd.Series(False, index=orders.index)
    if events.empty:
        return none, []
    cart = events.loc[events["action"].isin(_CART_ACTIONS) & events["buyer_id"].notna()]
    cart = cart.loc[cart["event_at"].notna()].reset_index(drop=True)
    if cart.empty:
        return none, []
    window = _window_counts(cart["buyer_id"], cart["event_at"], 60)
    bursts = cart.assign(count=window["count"].to_numpy(), start=window["start"].to_numpy())
    bursts = bursts.loc[bursts["count"] > b.cart_events_per_minute]
    if bursts.empty:
        return none, []
    bursts = (
        bursts.sort_values(["buyer_id", "event_at", "count"])
        .drop_duplicates(["buyer_id", "event_at"], keep="last")[["buyer_id", "event_at", "count"]]
        .rename(columns={"event_at": "burst_at"})
    )
    left = orders[["buyer_id", "created_at"]].reset_index()
    left = left.loc[left["buyer_id"].notna() & left["created_at"].notna()]
    left["buyer_id"] = left["buyer_id"].astype(str)
    bursts["buyer_id"] = bursts["buyer_id"].astype(str)
    bursts["burst_at"] = pd.to_datetime(bursts["burst_at"], utc=True)
    merged = pd.merge_asof(
        left.sort_values("created_at"),
        bursts.sort_values("burst_at"),
        left_on="created_at",
        right_on="burst_at",
        by="buyer_id",
        direction="backward",
        tolerance=pd.Timedelta(minutes=b.cart_lookback_minutes),
    )
    merged = merged.loc[merged["count"].notna()].sort_values("index")
    mask = none.copy()
    mask.loc[merged["index"].to_numpy()] = True
    evidence = {
        i: {"cart_events_in_minute": int(c), "burst_at": _iso(t)}
        for i, c, t in zip(merged["index"], merged["count"], merged["burst_at"], strict=True)
    }
    return mask, [evidence[i] for i in orders.index[mask.to_numpy()]]


def _coupons(
    orders: pd.DataFrame, context: pd.DataFrame, rules: RiskRules
) -> dict[str, tuple[pd.Series, list]]:
    c = rules.coupons
    fired: dict[str, tuple[pd.Series, list]] = {}
    known = context.loc[context["buyer_id"].notna() & context["day"].notna()]
    daily = known.groupby(["buyer_id", "day"], sort=False).agg(
        goods=("goods_value", "sum"), discounts=("discount_amount", "sum")
    )
    share = daily["discounts"] / daily["goods"].where(daily["goods"] > 0)
    index = pd.MultiIndex.from_frame(orders[["buyer_id", "day"]])
    own = pd.Series(share.reindex(index).to_numpy(), index=orders.index)
    mask = (own > c.subsidy_share).fillna(False).astype(bool) & orders["buyer_id"].notna()
    goods = daily["goods"].reindex(index).to_numpy()[mask.to_numpy()]
    discounts = daily["discounts"].reindex(index).to_numpy()[mask.to_numpy()]
    fired["daily_subsidy_share"] = (
        mask,
        [
            {
                "day": _day(d),
                "share": round(float(s), 4),
                "discounts": _num(x),
                "goods_value": _num(g),
                "threshold": c.subsidy_share,
            }
            for d, s, x, g in zip(orders.loc[mask, "day"], own[mask], discounts, goods, strict=True)
        ],
    )

    coupon = known.loc[known["platform_discount"].fillna(0) > 0]
    pairs = coupon[["buyer_id", "day", "channel"]].drop_duplicates()
    count = pairs.groupby(["buyer_id", "day"], sort=False).size()
    n = pd.Series(count.reindex(index).fillna(0).to_numpy(dtype=np.int64), index=orders.index)
    has_own = orders["platform_discount"].fillna(0) > 0
    mask = (n >= c.stacked_channels) & has_own & orders["buyer_id"].notna()
    # the channel lists, for the few stacked buyer-days only
    stacked = count[count >= c.stacked_channels].index
    names = (
        pairs.set_index(["buyer_id", "day"]).loc[stacked].sort_values("channel")
        .groupby(level=[0, 1])["channel"].agg(list)
        if len(stacked) else pd.Series(dtype=object)
    )  # fmt: skip
    listed = pd.Series(names.reindex(index).to_numpy(), index=orders.index)
    fired["coupon_stacking"] = (
        mask,
        [
            {"day": _day(d), "channels": ch}
            for d, ch in zip(orders.loc[mask, "day"], listed[mask], strict=True)
        ],
    )
    return fired


def _cross_border(orders: pd.DataFrame, rules: RiskRules) -> dict[str, tuple[pd.Series, list]]:
    x = rules.cross_border
    abroad = orders["country"].notna() & ~orders["country"].str.strip().str.upper().eq(
        x.home_country.upper()
    ).fillna(True)
    missing = pd.DataFrame({f: _blank(orders[f]) for f in x.required_fields}, index=orders.index)
    hs = orders["hs_code"].str.strip()
    bad_hs = hs.notna() & ~hs.str.fullmatch(x.hs_code_pattern).fillna(False).astype(bool)
    bad_value = orders["declared_value"].notna() & (orders["declared_value"] <= 0)
    mask = abroad & (missing.any(axis=1) | bad_hs | bad_value)
    names = np.array(missing.columns)
    missing_rows = missing.to_numpy(dtype=bool)
    evidence = []
    for i in np.flatnonzero(mask.to_numpy()):
        item: dict[str, Any] = {"country": orders["country"].iat[i]}
        gone = names[missing_rows[i]].tolist()
        if gone:
            item["missing"] = gone
        invalid = [
            f
            for f, bad in (("hs_code", bad_hs.iat[i]), ("declared_value", bad_value.iat[i]))
            if bad
        ]
        if invalid:
            item["invalid"] = invalid
        evidence.append(item)
    return {"customs_incomplete": (mask, evidence)}


# ---------------------------------------------------------------- the entry point


def _iso(value: object) -> str | None:
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).isoformat()


def _day(number: object) -> str:
    return (pd.Timestamp(0) + pd.Timedelta(days=int(number))).strftime("%Y-%m-%d")


def _num(value: object) -> float | None:
    if value is None or pd.isna(value):
        return None
    return round(float(value), 2)


def _prepare_events(events: pd.DataFrame | None) -> pd.DataFrame:
    columns = ("buyer_id", "action", "ip", "device")
    if events is None or events.empty:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns}).assign(
            event_at=pd.Series(dtype="datetime64[ns, UTC]")
        )
    out = events.copy()
    for column in columns:
        if column not in out:
            out[column] = pd.NA
        out[column] = out[column].astype("string")
    out["action"] = out["action"].str.lower()
    out["event_at"] = pd.to_datetime(out["event_at"], utc=True, errors="coerce")
    return out


def score_of(weights: np.ndarray) -> np.ndarray:
    """The combined score of a (orders × signals) matrix of fired weights (0 where quiet)."""
    keep = np.prod(1.0 - np.clip(weights, 0, 100) / 100.0, axis=1)
    return np.round(100.0 * (1.0 - keep), 1)


def assess(
    orders: pd.DataFrame,
    rules: RiskRules,
    *,
    context: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score every order of `orders`: one row each, columns `OUTPUT_COLUMNS`, sorted by key.

    `signals` maps each fired signal's name to its evidence (JSON-ready); `decision` is
    `review` or `pass`."""
    if orders.empty:
        return pd.DataFrame({c: [] for c in OUTPUT_COLUMNS})
    prepared = _prepare(orders).sort_values(KEY).drop_duplicates(KEY).reset_index(drop=True)
    around = _with_context(prepared, context)
    ev = _prepare_events(events)
    fired: dict[str, tuple[pd.Series, list]] = {}
    fired |= _validation(prepared, around, rules)
    fired |= _behaviour(prepared, around, ev, rules)
    fired |= _coupons(prepared, around, rules)
    fired |= _cross_border(prepared, rules)

    n = len(prepared)
    weights = np.zeros((n, len(ALL_SIGNALS)))
    signals: list[dict[str, Any]] = [{} for _ in range(n)]
    for j, name in enumerate(ALL_SIGNALS):
        mask, evidence = fired[name]
        rows = np.flatnonzero(mask.to_numpy(dtype=bool))
        assert len(rows) == len(evidence), name
        weights[rows, j] = rules.weights[name]
        for i, item in zip(rows, evidence, strict=True):
            signals[i][name] = item
    score = score_of(weights)
    always = np.zeros(n, dtype=bool)
    for name in rules.review.always:
        always |= fired[name][0].to_numpy(dtype=bool)
    review = (score > rules.review.threshold) | always
    return pd.DataFrame(
        {
            "channel": prepared["channel"].to_numpy(),
            "platform_order_no": prepared["platform_order_no"].to_numpy(),
            "score": score,
            "signals": signals,
            "decision": np.where(review, "review", "pass"),
            "b2b": fired["b2b_address"][0].to_numpy(dtype=bool),
            "needs_second_verification": fired["virtual_carrier_phone"][0].to_numpy(dtype=bool),
        }
    )


def summarise(assessments: pd.DataFrame) -> Mapping[str, int]:
    """How often each signal fired in a batch (signals in the rule file's order)."""
    counts = dict.fromkeys(ALL_SIGNALS, 0)
    for item in assessments["signals"]:
        for name in item:
            # `learned_score`: the model's evidence (fulfillment.risk_model.combine)
            counts[name] = counts.get(name, 0) + 1
    return {k: v for k, v in counts.items() if v}
