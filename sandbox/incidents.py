"""Incidents: business trouble the sandbox plants on its timeline for OrderPulse's sensors to find,
and the list of them in the truth (`orderpulse sandbox truth` → `"incidents"`).

An incident is never a label in the served data: it shows only as what the merchant would see
(orders that stop coming, parcels that arrive late, a price that differs, tickets that pile up).
Each kind, its subject and how it shows (the thresholds are issue 13's):

- `channel_silent` {channel}: no new orders on the channel for the last >= 4 h of the world,
  long enough that the others place as many as stand for 20 of its own at its usual share; its
  orders of that stretch are placed earlier. No other channel falls quiet by chance (even_out).
- `stock_sync_stale` {warehouse}: its WMS stock last synced 47 min before the end (> 30 min).
- `region_late_deliveries` {region}: 40 % of the province's parcels run late (elsewhere 3.5 %);
  half its marketplace orders are moved back by whole multiples of `days`, so that its
  delivered history covers at least three full Beijing days before the world's own.
- `price_difference` {sku, channel}: a hot SKU sold 5-8 % dearer on one channel (> 0.8 %).
- `oversold` {sku}: a SKU sold out; its last buyers' orders never ship (`allocate_failed`,
  negative available stock).
- `stuck_orders` {channel, status}: orders of one channel paid 50-72 h before the end, 2 % of
  all orders, never leave `allocated` (the WMS allocated them and never picked).
- `return_interception_failed` {channel}: half the channel's interceptions fail (the parcel is
  delivered although the buyer cancelled on the way); elsewhere 4 %.
- `cs_escalation` {channel, platform_order_no}: a stuck order's buyer asks three times within
  a day, with 投诉 / 12315 / 工商局 / 差评.

A calm world (`calm=True`) plants none and avoids accidental breaches: no price differences, no
late region, every warehouse synced within 4 minutes, no stuck or oversold orders, no stock under
the safety line, return interceptions at most 4 % failed per channel. Worlds under `MIN_ORDERS`
orders plant only the stale warehouse (too few orders for rates to mean anything).

Incident randomness comes from its own generator (`incident_rng`), so planting changes only the
orders it touches, never the draws of the rest of the world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from sandbox.catalog import STALE_WAREHOUSE as STALE_WAREHOUSE  # the one whose sync stops

KINDS = (
    "channel_silent", "stock_sync_stale", "region_late_deliveries", "price_difference",
    "oversold", "stuck_orders", "return_interception_failed", "cs_escalation",
)  # fmt: skip
MIN_ORDERS = 2000
HOUR = 3600
DAY = 86400

# who is hit, in order of preference among the world's channels
SILENT_CHANNELS = ("pdd", "douyin", "jd", "kuaishou", "taobao")
SILENT_MIN_HOURS, SILENT_MAX_HOURS = 4, 12
SILENT_EXPECTED = 20  # the silent channel's usual orders that the others' traffic stands for
STEADY_EXPECTED = 6.0  # no other channel goes quiet for longer than this many of its orders
STUCK_CHANNELS = ("douyin", "kuaishou", "jd", "taobao", "pdd")
STUCK_WINDOW_HOURS = (72, 50)  # paid this many hours before the end (a wave, red after 48 h)
STUCK_SHARE = 0.02  # of all the world's orders
PRICE_CHANNELS = ("jd", "kuaishou", "youzan", "taobao", "douyin")
PRICE_FACTORS = (1.06, 1.08, 1.05)
PRICE_MIN_LINES = 5
INTERCEPT_CHANNELS = ("taobao", "douyin", "pdd")  # their refund after shipping reads "refund"
INTERCEPT_SHARE = 0.03  # of delivered orders: the buyer cancels while the parcel travels
INTERCEPT_FAIL_HEALTHY, INTERCEPT_FAIL_INCIDENT = 0.04, 0.5
LATE_REGION = "四川省"
LATE_SHARE_HEALTHY, LATE_SHARE_INCIDENT = 0.035, 0.40
STALE_SYNC_MINUTES = 47  # > the routing circuit breaker's 30 min
ESCALATION_TICKETS = (  # (topic, text with the order number as {no}); three asks in a day
    ("催发货", "订单{no}付款三天了还没发货，再不发货我就投诉了"),
    ("催发货", "第二次来问了，还是没发货也没人回复，我要打12315投诉"),
    ("投诉", "已经向工商局反映了，这家店我一定给差评"),
)


@dataclass
class Incident:
    """One planted incident; times are unix seconds. `order` is the index of the order it
    concerns (its channel and number are filled in once the orders exist)."""

    kind: str
    subject: dict[str, str]
    start: int
    end: int
    detail: dict = field(default_factory=dict)
    order: int = -1

    def as_dict(self) -> dict:
        """The truth form: {"kind", <subject keys>, "start", "end", <detail>}, ISO 8601 UTC."""
        return {
            "kind": self.kind,
            **self.subject,
            "start": _iso(self.start),
            "end": _iso(self.end),
            **self.detail,
        }


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def incident_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 13, 20261204])


def preferred(channels: tuple[str, ...], choices: tuple[str, ...]) -> int:
    """Index into `channels` of the first of `choices` the world has (-1: none)."""
    return next((channels.index(c) for c in choices if c in channels), -1)


def truth_list(incidents: list[Incident]) -> list[dict]:
    """The incidents in truth form, sorted by kind (in KINDS order) and start."""
    rows = sorted(incidents, key=lambda i: (KINDS.index(i.kind), i.start, str(i.subject)))
    return [i.as_dict() for i in rows]


# -- planting (called by sandbox.world_plan at the step each one belongs to) -------------------
def move_region_history(
    rng: np.random.Generator, created: np.ndarray, eligible: np.ndarray, start: int, days: int
) -> tuple[np.ndarray, int]:
    """Move part of the late region's orders `days` × j days back (j = 1..k, k·days ≥ 3) so
    that its delivered history covers at least three full Beijing days; returns the moved mask
    and the new start of the world."""
    k = -(-3 // days)
    idx = np.flatnonzero(eligible)
    moved = np.zeros(len(created), bool)
    chosen = idx[rng.random(len(idx)) < k / (k + 1)]
    created[chosen] -= rng.integers(1, k + 1, size=len(chosen)) * days * DAY
    moved[chosen] = True
    return moved, start - k * days * DAY if len(chosen) else start


def silence_channel(
    rng: np.random.Generator,
    created: np.ndarray,
    channel: np.ndarray,
    taken: np.ndarray,
    silent: int,
    start: int,
    end: int,
) -> tuple[int, np.ndarray]:
    """Empty the last hours of channel `silent`: the stretch lasts ≥ SILENT_MIN_HOURS and long
    enough that the other channels place as many orders as stand for SILENT_EXPECTED of its own.
    Its orders there are placed at times drawn from the other orders before the stretch; those
    tied to other orders (bursts, pairs) are returned to move to another channel instead.
    Returns (start of the silence, mask of orders to switch channel)."""
    mine = channel == silent
    share = max(float(mine.mean()), 1e-9)
    others = np.sort(created[~mine])
    need = int(np.ceil(SILENT_EXPECTED * (1 - share) / share))
    gap = end - SILENT_MIN_HOURS * HOUR
    if len(others) >= need:
        gap = min(gap, int(others[-need]))
    gap = max(gap, end - SILENT_MAX_HOURS * HOUR, start + HOUR)
    in_gap = mine & (created >= gap)
    move = np.flatnonzero(in_gap & ~taken)
    pool = np.flatnonzero((created < gap) & (created >= start))
    if len(pool) and len(move):
        when = created[rng.choice(pool, len(move))] + rng.integers(-900, 900, size=len(move))
        created[move] = np.clip(when, start, gap - 60)
    return gap, in_gap & taken


def stuck_wave(
    rng: np.random.Generator, pool: np.ndarray, pay_at: np.ndarray, end: int
) -> np.ndarray:
    """As many as STUCK_SHARE of all orders, from the wave channel's orders (`pool`) paid in the
    STUCK_WINDOW_HOURS window."""
    early, late = STUCK_WINDOW_HOURS
    window = np.flatnonzero(pool & (pay_at >= end - early * HOUR) & (pay_at <= end - late * HOUR))
    wave = np.zeros(len(pay_at), bool)
    size = min(len(window), int(np.ceil(STUCK_SHARE * len(pay_at))))
    wave[rng.choice(window, size, replace=False)] = True
    return wave


def price_skus(
    rng: np.random.Generator,
    line_channel: np.ndarray,
    item_sku: np.ndarray,
    channels: tuple[str, ...],
    n_skus: int,
) -> list[tuple[int, int, float]]:
    """(channel index, SKU rank, price factor) for up to three hot SKUs, each sold on its
    channel (≥ PRICE_MIN_LINES lines) and on at least two others."""
    lines = np.bincount(line_channel * n_skus + item_sku, minlength=len(channels) * n_skus)
    lines = lines.reshape(len(channels), n_skus)
    sellers = (lines > 0).sum(axis=0)
    out: list[tuple[int, int, float]] = []
    used: set[int] = set()
    for name, factor in zip(
        [c for c in PRICE_CHANNELS if c in channels], PRICE_FACTORS, strict=False
    ):
        c = channels.index(name)
        ok = [
            s for s in range(2, min(45, n_skus))
            if lines[c, s] >= PRICE_MIN_LINES and sellers[s] >= 3 and s not in used
        ]  # fmt: skip
        if ok:
            s = int(rng.choice(ok))
            used.add(s)
            out.append((c, s, factor))
    return out


def interceptions(
    rng: np.random.Generator,
    candidates: np.ndarray,
    channel: np.ndarray,
    ship_at: np.ndarray,
    arrive: np.ndarray,
    end: int,
    failing: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parcels the buyer cancels while they travel: the merchant asks the carrier to stop them.
    Returns (attempted mask, failed mask, time of the refund). Failures per channel are a quota
    (INTERCEPT_FAIL_HEALTHY of the attempts, rounded down; INTERCEPT_FAIL_INCIDENT on channel
    `failing`, -1 for none), so a healthy channel never breaches by bad luck."""
    n = len(channel)
    when = ship_at + ((arrive - ship_at) * rng.uniform(0.2, 0.5, n)).astype(np.int64)
    tried = candidates & (rng.random(n) < INTERCEPT_SHARE) & (when + 6 * HOUR <= end)
    idx = np.flatnonzero(tried)
    idx = idx[np.lexsort((rng.random(len(idx)), channel[idx]))]  # by channel, shuffled within
    ch = channel[idx].astype(np.int64)
    first = np.r_[True, ch[1:] != ch[:-1]] if len(ch) else np.zeros(0, bool)
    rank = np.arange(len(idx)) - np.maximum.accumulate(np.where(first, np.arange(len(idx)), 0))
    count = np.bincount(ch, minlength=int(channel.max(initial=0)) + 1)
    rate = np.full(len(count), INTERCEPT_FAIL_HEALTHY)
    if failing >= 0 and failing < len(rate):
        rate[failing] = INTERCEPT_FAIL_INCIDENT
    quota = np.floor(rate * count).astype(np.int64)
    failed = np.zeros(n, bool)
    failed[idx[rank < quota[ch]]] = True
    return tried, failed, when


def even_out(
    created: np.ndarray,
    channel: np.ndarray,
    movable: np.ndarray,
    start: int,
    end: int,
    skip: int = -1,
    most: float = STEADY_EXPECTED,
    rounds: int = 8,
) -> None:
    """Trim the far tail of chance silences: wherever a channel (but `skip`) has no order for a
    stretch in which the other channels place as many orders as stand for `most` of its own at
    its usual share (by chance about once in 400 such stretches), move one of its orders from
    its busiest moment (the smallest span between its neighbours) into the stretch's middle.
    Only `movable` orders inside [start, end] move; the stretch up to `end` counts too."""
    inside = (created >= start) & (created <= end)
    for _ in range(rounds):
        every = np.sort(created[inside])
        calm = True
        for c in np.unique(channel[inside]):
            if c == skip:
                continue
            own = np.flatnonzero(inside & (channel == c))
            own = own[np.argsort(created[own], kind="stable")]
            share = len(own) / len(every)
            if share >= 1 or len(own) < 3:
                continue
            marks = np.r_[start, created[own], end]
            others = np.searchsorted(every, marks[1:]) - np.searchsorted(every, marks[:-1], "right")
            bad = np.flatnonzero(others * share / (1 - share) >= most)
            if len(bad) == 0:
                continue
            calm = False
            span = marks[2:] - marks[:-2]  # around each own order
            span[~movable[own]] = np.iinfo(np.int64).max
            span[np.isin(np.arange(len(own)), np.r_[bad, bad - 1])] = np.iinfo(np.int64).max
            donors = own[np.argsort(span, kind="stable")[: len(bad)]]
            donors = donors[movable[donors]]
            gaps = bad[: len(donors)]
            created[donors] = (marks[gaps] + marks[gaps + 1]) // 2
        if calm:
            return
