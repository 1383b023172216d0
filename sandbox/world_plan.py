"""The world's plan: every random draw of a world, column-wise with numpy.

`plan_world(seed, n, days, end, channels)` draws the whole business of the period as arrays
(`WorldPlan`): buyers (district, phone, name, address, IP), orders (channel, shop, buyer,
creation time), items, amounts in cents, the lifecycle events as unix seconds and the label of
every injected anomaly. `sandbox.world` turns the plan into `Order` objects. Every draw comes
from one generator seeded with `seed`, in a fixed sequence: the same arguments give the same
plan, and reordering or adding a draw here changes every seeded world (tests/sandbox pins a
digest).

Injected anomalies are recorded under stable names (`LABELS`). Labels that follow from the data
are computed from it, so they are exact: `night_payment` (paid 02:00–04:00 Beijing time),
`virtual_carrier_phone` (170/171), `cross_border` (country != CN), `remote_region`
(新疆/西藏/青海), `b2b_address` (an office: 公司/工业园, 大厦/写字楼 or 办公室 in the
address), `duplicate_order` (same phone and address, created within 30 min of another
order of that household, both mergeable as a merchant sees them: shipped by parcel, not POS,
neither cancelled nor refunded, the receiver visible: PDD hides it unless the order is paid and
awaiting shipment; every other injected pair spans two channels), `coupon_stacking` (a
buyer's coupons in one Beijing day exceed 30 % of the day's goods value, or platform coupons
on two or more channels that day), `stuck_order` (paid more than 48 h before `end`, neither
shipped, cancelled nor refunded). The others are injected: `ip_burst`
(6–9 orders from one IP within an hour), `oversold_sku` (paid after the SKU's stock ran out;
never shipped), `late_status_update` (the platform reports the order's last event hours late,
see `World.late_updates`), `pickup_failure` (the carrier's first pickup failed, a retry
succeeded), `delivery_timeout` (delivered, or still undelivered at `end`, after the promised
time), `cart_churn` (> 20 cart add/remove in a minute before ordering), `customs_incomplete`
(cross-border order without an HS code).

Hidden verdicts (`VERDICTS`: `fraud`, `coupon_abuse`) come from the latent actors of
`sandbox.fraud_actors` (own generator), not from the data: see its story.

Incidents (`sandbox.incidents`) are planted here too, with their own generator, unless the world
is `calm`: a silent channel, the late region's history and lateness, a SKU priced differently
on one channel, a wave of stuck orders, failing return interceptions, an escalating buyer (the
oversold SKUs and the stale warehouse are incidents as well). Each becomes an `Incident` in
`WorldPlan.incidents`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from sandbox import fraud_actors, geo, incidents, people
from sandbox.catalog import Shop, Sku, assign_warehouses, catalogue, popularity, shops
from sandbox.channels import CHANNELS, MARKETPLACES
from sandbox.gateways import per_channel
from sandbox.incidents import Incident

LABELS = (
    "ip_burst", "night_payment", "virtual_carrier_phone", "coupon_stacking", "duplicate_order",
    "oversold_sku", "stuck_order", "late_status_update", "cross_border", "remote_region",
    "b2b_address", "pickup_failure", "delivery_timeout", "cart_churn", "customs_incomplete",
)  # fmt: skip
# hidden verdicts of the latent risk truth (sandbox.fraud_actors), apart from the signal labels
VERDICTS = fraud_actors.VERDICTS

# share of orders per channel: the marketplaces carry most of the business; a marketplace's
# share is its gateway's `share`, the other channels' are here
CHANNEL_SHARE = per_channel(
    "share", {"h5mall": 0.07, "pos": 0.05, "regional_a": 0.05, "regional_b": 0.05}
)
CROSS_BORDER_CHANNELS = ("taobao", "jd", "douyin", "youzan", "h5mall")
# draws kept from when a few SKUs were cheaper on these channels (now one price everywhere,
# except a planted price_difference incident): keeps the rest of every seeded world as it was
_PRICE_DRAWS = {"pdd": 0.04, "douyin": 0.02}
# Beijing hour-of-day weights of order creation (evening peak, quiet nights)
_HOUR_WEIGHT = np.array([2.0, 1.2, 0.7, 0.5, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4.2, 4.5,
                         4.8, 4.3, 4.2, 4.4, 4.5, 4.6, 4.8, 5.5, 6.5, 7.5, 7.0, 4.0])  # fmt: skip
EVENT_ORDER = ("pay", "ship", "deliver", "reject", "return", "cancel", "refund")
BJ = 8 * 3600
HOUR = 3600
NONE = np.int64(-1)


# -- the column plan --------------------------------------------------------------------------
@dataclass
class WorldPlan:
    """A world as columns: per buyer (`p_*`), per order and per item line."""

    start: int
    end: int
    channels: tuple[str, ...]
    skus: list[Sku]
    shops: dict[str, list[Shop]]
    shop_ids: list[str]
    # per person
    p_district: np.ndarray
    p_abroad: np.ndarray  # -1 = mainland, else index into geo.ABROAD
    p_b2b: np.ndarray
    p_phone: np.ndarray  # prefix index * 10**8 + 8 digits; virtual prefixes after the normal
    p_name: np.ndarray  # (P, 3): surname, given1, given2
    p_addr: np.ndarray  # (P, 5) ints for the street address
    p_ip: np.ndarray
    # per order
    channel: np.ndarray
    shop: np.ndarray
    person: np.ndarray
    ip: np.ndarray
    created: np.ndarray
    ev: dict[str, np.ndarray]  # event type -> unix seconds or -1
    freight: np.ndarray  # cents
    shop_coupon: np.ndarray
    platform_coupon: np.ndarray
    item_start: np.ndarray  # offsets into the item arrays (len n + 1)
    item_sku: np.ndarray
    item_qty: np.ndarray
    item_price: np.ndarray  # cents
    labels: dict[str, np.ndarray]  # label -> bool mask over orders
    note: np.ndarray  # buyer note index or -1
    seller_note: np.ndarray
    late_delay: np.ndarray  # seconds the last event shows late, 0 = on time
    oversold: list[int]
    incidents: list[Incident]
    calm: bool = False
    p_device: np.ndarray | None = None  # per person: -1 = own phone model, else a fingerprint

    @property
    def n(self) -> int:
        return len(self.channel)


def plan_world(
    seed: int,
    n: int,
    days: int,
    end_dt: datetime,
    channels: tuple[str, ...],
    calm: bool = False,
) -> WorldPlan:
    """Draw the world of `n` orders over `days` days up to `end_dt` on `channels`; a `calm`
    world has no incidents (see sandbox.incidents)."""
    if n < 0 or days <= 0:
        raise ValueError(f"orders must be >= 0 and days > 0 (got orders={n}, days={days})")
    unknown = set(channels) - set(CHANNELS)
    if unknown or not channels:
        raise ValueError(f"channels {sorted(unknown)} unknown; choose from {', '.join(CHANNELS)}")
    if end_dt.tzinfo is None:
        raise ValueError("end needs a timezone (e.g. datetime.now(UTC))")
    rng = np.random.default_rng([seed, 20261111])
    end = int(end_dt.timestamp())
    start = end - days * 86400
    skus = catalogue(seed)
    shop_map = shops()
    ds = geo.districts()
    d_lat, d_lon, d_weight, d_remote = geo.district_arrays()
    remote_idx = np.flatnonzero(d_remote)

    # -- persons (buyers): most buy once in the period, some come back
    n_persons = max(40, n)
    p_district = rng.choice(len(ds), n_persons, p=d_weight)
    is_remote = rng.random(n_persons) < 0.012
    p_district[is_remote] = rng.choice(remote_idx, int(is_remote.sum()))
    p_abroad = np.where(
        rng.random(n_persons) < 0.015, rng.integers(len(geo.ABROAD), size=n_persons), -1
    )
    p_b2b = (rng.random(n_persons) < 0.03) & (p_abroad < 0)
    n_prefix = len(people.MOBILE_PREFIXES)
    prefix = rng.integers(n_prefix, size=n_persons)
    virtual = (rng.random(n_persons) < 0.008) & (p_abroad < 0)
    n_virtual = int(virtual.sum())
    prefix[virtual] = n_prefix + rng.integers(len(people.VIRTUAL_PREFIXES), size=n_virtual)
    p_phone = prefix * 10**8 + rng.integers(10**8, size=n_persons)
    given2 = rng.integers(len(people.GIVEN), size=n_persons)
    given2[rng.random(n_persons) < 0.35] = -1  # one-character given name
    p_name = np.stack([
        rng.integers(len(people.SURNAMES), size=n_persons),
        rng.integers(len(people.GIVEN), size=n_persons),
        given2,
    ], axis=1)  # fmt: skip
    p_addr = np.stack([
        rng.integers(len(geo.ROADS), size=n_persons),
        rng.integers(1, 999, size=n_persons),
        rng.integers(100, size=n_persons),  # community / park
        rng.integers(1, 40, size=n_persons),  # building / company
        rng.integers(1, 26, size=n_persons) * 100 + rng.integers(1, 6, size=n_persons),  # room
    ], axis=1)  # fmt: skip
    octets = np.array(geo.CN_IP_FIRST_OCTETS, dtype=np.int64)
    p_ip = octets[rng.integers(len(octets), size=n_persons)] << 24
    p_ip |= rng.integers(1 << 24, size=n_persons)

    # -- orders: channel, shop, person, creation time (by Beijing hour of day)
    share = np.array([CHANNEL_SHARE[c] for c in channels])
    channel = rng.choice(len(channels), n, p=share / share.sum()).astype(np.int16)
    ch_names = np.array(channels)
    shop_ids: list[str] = []
    shop_base = {}
    for c in channels:
        shop_base[c] = len(shop_ids)
        shop_ids += [s.shop_id for s in shop_map[c]]
    n_shops = np.array([len(shop_map[c]) for c in channels])
    base = np.array([shop_base[c] for c in channels])
    shop = base[channel] + (rng.random(n) * n_shops[channel]).astype(np.int64)
    person = np.minimum(np.arange(n), n_persons - 1)
    repeat = rng.random(n) < 0.12  # a returning buyer
    person[repeat] = rng.integers(n_persons, size=int(repeat.sum()))
    # overseas buyers only order where the shop ships abroad
    cb_ok = np.isin(ch_names[channel], CROSS_BORDER_CHANNELS)
    domestic = np.flatnonzero(p_abroad < 0)
    fix = (p_abroad[person] >= 0) & ~cb_ok
    person[fix] = domestic[rng.integers(len(domestic), size=int(fix.sum()))]
    created = _creation_times(rng, n, start, end)
    ip = p_ip[person].copy()

    is_market = np.isin(ch_names[channel], MARKETPLACES)
    is_pos = ch_names[channel] == "pos"
    taken = is_pos.copy()  # injected anomalies never overlap (and never on POS)
    forced_paid = np.zeros(n, bool)
    lab = {name: np.zeros(n, bool) for name in LABELS + VERDICTS}

    def pick(k: int, mask: np.ndarray | None = None) -> np.ndarray:
        free = np.flatnonzero(~taken & (mask if mask is not None else True))
        if len(free) == 0 or k <= 0:
            return np.empty(0, np.int64)
        chosen = rng.choice(free, min(k, len(free)), replace=False)
        taken[chosen] = True
        return chosen

    # ip_burst: a fraud farm places 6-9 orders from one IP inside an hour
    sizes = rng.integers(6, 10, size=max(1, round(n / 2500)) if n >= 12 else 0)
    chosen = pick(int(sizes.sum()), is_market)
    for group in np.split(chosen, np.cumsum(sizes)[:-1]):
        if len(group) == 0:  # a tiny world ran out of orders to pick
            continue
        t0 = int(rng.integers(start, max(start + 1, end - 2 * HOUR)))
        created[group] = t0 + np.sort(rng.integers(0, 55 * 60, size=len(group)))
        ip[group] = int(octets[int(rng.integers(len(octets)))]) << 24 | int(rng.integers(1 << 24))
    forced_paid[chosen] = lab["ip_burst"][chosen] = True
    # duplicate_order: the same household orders again within 2-25 minutes (mergeable), every
    # other pair on another shipping channel (a buyer with accounts on two marketplaces)
    pairs = pick(2 * (max(2, round(n / 800)) if n >= 4 else 0), ~is_pos)
    a, b = pairs[: len(pairs) // 2], pairs[len(pairs) // 2 : len(pairs) // 2 * 2]
    person[b], channel[b], shop[b], ip[b] = person[a], channel[a], shop[a], ip[a]
    delta = rng.integers(120, 1500, size=len(a))
    _cross_channel(b[1::2], delta[1::2], channel, shop, channels, shop_base)
    created[b] = np.where(created[a] + delta <= end, created[a] + delta, created[a] - delta)
    forced_paid[pairs] = True
    # coupon_stacking: one buyer, platform coupons on 2-3 marketplaces the same Beijing day
    markets = [i for i, c in enumerate(channels) if c in MARKETPLACES]
    stacked = np.zeros(n, bool)
    if len(markets) >= 2 and n >= 6:
        sizes = rng.integers(2, min(3, len(markets)) + 1, size=max(2, round(n / 1200)))
        chosen = pick(int(sizes.sum()), p_abroad[person] < 0)
        for group in np.split(chosen, np.cumsum(sizes)[:-1]):
            if len(group) < 2:
                continue
            stacked[group] = True
            day0 = (end + BJ) // 86400 - int(rng.integers(0, days))  # a Beijing day in range
            t0 = day0 * 86400 - BJ + int(rng.integers(9, 16)) * HOUR
            if t0 + 4 * HOUR > end:
                t0 -= 86400
            chans = rng.choice(markets, len(group), replace=False)
            person[group] = person[group[0]]
            channel[group] = chans
            shop[group] = [shop_base[channels[c]] for c in chans]
            ip[group] = p_ip[person[group[0]]]
            created[group] = t0 + rng.integers(0, 4 * HOUR, size=len(group))
        forced_paid[stacked] = True
    np.clip(created, start, end - 60, out=created)
    ch_names_o = ch_names[channel]
    is_market = np.isin(ch_names_o, MARKETPLACES)
    is_pos = ch_names_o == "pos"
    # cart_churn: the buyer added/removed cart items > 20 times in a minute before ordering
    lab["cart_churn"][pick(max(1, n // 300) if n >= 10 else 0, ~is_pos)] = True

    # -- incidents that move orders in time: the late region's history, a silent channel
    irng = incidents.incident_rng(seed)
    plant = not calm and n >= incidents.MIN_ORDERS
    found: list[Incident] = []
    plan_start = start  # the first order's earliest time (the late region's history is older)
    province = np.array([d.province for d in ds])[p_district[person]]
    region = (province == incidents.LATE_REGION) & (p_abroad[person] < 0)
    hist = np.zeros(n, bool)
    if plant and region.any():
        hist, plan_start = incidents.move_region_history(
            irng, created, region & is_market & ~taken, start, days
        )
    if hist.any():
        found.append(
            Incident("region_late_deliveries", {"region": incidents.LATE_REGION}, plan_start, end)
        )
    silent = incidents.preferred(channels, incidents.SILENT_CHANNELS)
    alt = next((channels.index(c) for c in CROSS_BORDER_CHANNELS
                if c in channels and channels.index(c) != silent), -1)  # fmt: skip
    if plant and silent >= 0 and alt >= 0:
        gap, switch = incidents.silence_channel(irng, created, channel, taken, silent, start, end)
        channel[switch] = alt  # tied to other orders (a burst, a pair): sold elsewhere instead
        shop[switch] = shop_base[channels[alt]]
        found.append(Incident("channel_silent", {"channel": channels[silent]}, gap, end))
        ch_names_o = ch_names[channel]
        is_market = np.isin(ch_names_o, MARKETPLACES)
        is_pos = ch_names_o == "pos"
    else:
        silent = -1
    # no channel but the silent one falls quiet by chance (a calm world: none at all)
    incidents.even_out(created, channel, ~taken & ~hist, start, end, skip=silent)

    # -- items: 1-5 lines, hot items sell most, unique SKUs per order
    n_items = rng.choice(5, n, p=[0.55, 0.25, 0.11, 0.06, 0.03]) + 1
    n_items[is_pos] = np.minimum(n_items[is_pos], 3)
    item_start = np.zeros(n + 1, np.int64)
    np.cumsum(n_items, out=item_start[1:])
    n_lines = int(item_start[-1])
    item_order = np.repeat(np.arange(n), n_items)
    slot = np.arange(n_lines) - item_start[item_order]
    item_sku = rng.choice(len(skus), n_lines, p=popularity(len(skus)))
    for _ in range(8):  # re-draw a SKU already on an earlier line of the same order
        dup = np.zeros(n_lines, bool)
        for back in range(1, 5):
            same = (slot >= back) & (item_sku == np.roll(item_sku, back))
            dup |= same
        if not dup.any():
            break
        shift = rng.integers(1, len(skus), size=int(dup.sum()))
        item_sku[dup] = (item_sku[dup] + shift) % len(skus)
    item_qty = rng.choice(3, n_lines, p=[0.82, 0.13, 0.05]) + 1
    list_cents = np.array([int(s.price * 100) for s in skus], dtype=np.int64)
    factor = np.ones((len(channels), len(skus)))
    for c in channels:
        if c in _PRICE_DRAWS:
            rng.random(len(skus))
    if plant:
        line_channel = channel[item_order].astype(np.int64)
        for ci, rank, price_factor in incidents.price_skus(
            irng, line_channel, item_sku, channels, len(skus)
        ):
            factor[ci, rank] = price_factor
            found.append(Incident(
                "price_difference", {"sku": skus[rank].sku, "channel": channels[ci]},
                plan_start, end, {"price_factor": price_factor},
            ))  # fmt: skip
    item_price = list_cents[item_sku] * factor[channel[item_order], item_sku]
    item_price = np.rint(item_price).astype(np.int64)
    goods = np.add.reduceat(item_qty * item_price, item_start[:-1]) if n else np.zeros(0, np.int64)
    del slot, dup, factor

    # -- payment, shipping, delivery, after-sales (unix seconds, -1 = did not happen by `end`)
    ev = {t: np.full(n, NONE) for t in EVENT_ORDER}
    pay_at = created + np.clip(rng.exponential(180, n), 5, 1500).astype(np.int64)
    pay_at[is_pos] = created[is_pos]
    intends = (rng.random(n) < 0.94) | forced_paid | is_pos
    paid = intends & (pay_at <= end)
    ev["pay"][paid] = pay_at[paid]
    timeout = ~intends & (created + 1800 <= end)  # unpaid orders close after 30 minutes
    ev["cancel"][timeout] = created[timeout] + 1800

    fate = rng.random(n)
    refund_early = paid & ~is_pos & ~forced_paid & (fate < 0.03)
    t = pay_at + rng.integers(600, 8 * HOUR, size=n)
    ok = refund_early & (t <= end)
    ev["refund"][ok] = t[ok]
    stuck_pool = paid & ~is_pos & ~refund_early & ~taken & ~hist & (pay_at <= end - 50 * HOUR)
    no_ship = refund_early | is_pos | ~paid
    stuck = pick(max(1, int(stuck_pool.sum() * 0.04)), stuck_pool)
    # one in eight of those drawn sticks (a calm world: none), scattered over the channels
    no_ship[stuck[: 0 if calm else max(1, len(stuck) // 8)]] = True
    wave_c = incidents.preferred(channels, incidents.STUCK_CHANNELS)
    if plant and wave_c >= 0:
        wave = incidents.stuck_wave(irng, stuck_pool & ~taken & (channel == wave_c), pay_at, end)
        if wave.any():
            no_ship[wave] = taken[wave] = True
            found.append(Incident(
                "stuck_orders", {"channel": channels[wave_c], "status": "allocated"},
                int(pay_at[wave].min()), end, {"orders": int(wave.sum())},
            ))  # fmt: skip
            # one of its buyers asks three times within the last day, angrier each time
            who = int(irng.choice(np.flatnonzero(wave)))
            found.append(Incident("cs_escalation", {}, end - 20 * HOUR, end - 2 * HOUR, order=who))

    # oversold: two mid-popular SKUs sold out; the last buyers' orders can never ship
    oversold = []
    # a calm warehouse ships everything within 20 h (nothing waits a day in one status)
    longest = (20 if calm else 30) * HOUR
    ship_delay = np.clip(rng.lognormal(np.log(8 * HOUR), 0.6, n), HOUR, longest).astype(np.int64)
    ship_at = pay_at + ship_delay
    ranks = rng.choice(np.arange(50, min(120, len(skus))), 2, replace=False)
    for rank in ranks if n >= 200 and not calm else []:
        has = np.zeros(n, bool)
        has[item_order[item_sku == rank]] = True
        cand = np.flatnonzero(has & paid & ~no_ship & ~taken & ~forced_paid)
        if len(cand) < 3:
            continue
        cand = cand[np.argsort(pay_at[cand], kind="stable")]
        late = cand[-max(2, len(cand) // 6) :]
        taken[late] = no_ship[late] = lab["oversold_sku"][late] = True
        oversold.append(int(rank))

    shipped = ~no_ship & (ship_at <= end)
    ev["ship"][shipped] = ship_at[shipped]
    for rank in oversold:  # every other paid, unshipped order of a sold-out SKU waits too
        has = np.zeros(n, bool)
        has[item_order[item_sku == rank]] = True
        waiting = has & paid & ~shipped & ~refund_early & ~is_pos
        lab["oversold_sku"] |= waiting
        taken |= waiting
    for rank in oversold:
        has = np.zeros(n, bool)
        has[item_order[item_sku == rank]] = True
        since = int(pay_at[has & lab["oversold_sku"]].min())
        found.append(Incident("oversold", {"sku": skus[rank].sku}, since, end))

    # -- the latent risk truth: fraudsters, coupon farmers and honest look-alikes (own generator;
    # before the delivery promise, which follows the receiver's district)
    p_device = np.full(n_persons, -1, np.int64)
    abroad = p_abroad[person] >= 0
    remote = d_remote[p_district[person]] & ~abroad
    eligible = paid & ~taken & ~is_pos & ~abroad & ~remote & ~region & (not calm)
    frng = np.random.default_rng([seed, 20261204])
    verdicts, coupon_draws = fraud_actors.plant_actors(
        frng,
        fraud_actors.People(p_phone, p_addr, p_district, p_b2b, p_ip, p_device, n_prefix,
                            len(people.VIRTUAL_PREFIXES)),
        fraud_actors.OrdersView(person, ip, created, goods, is_market, lab["cart_churn"]),
        eligible, start, end, octets,
    )  # fmt: skip
    # the injected IP farms are fraud, the cross-platform stackers coupon abuse
    lab["fraud"] = verdicts["fraud"] | lab["ip_burst"]
    lab["coupon_abuse"] = verdicts["coupon_abuse"] | (stacked & paid)

    # where it ships from decides the promised delivery time
    lat, lon = d_lat[p_district[person]], d_lon[p_district[person]]
    all_hot = np.minimum.reduceat(item_sku < 50, item_start[:-1]) if n else np.zeros(0, bool)
    _, dist = assign_warehouses(lat, lon, all_hot.astype(bool))
    sla = geo.sla_hours_array(dist, remote, abroad) * HOUR
    pickup_fail = pick(max(1, int(shipped.sum() * 0.02)), shipped & (ship_at <= end - 12 * HOUR))
    lab["pickup_failure"][pickup_fail] = True
    transit = (sla * rng.uniform(0.3, 0.85, n)).astype(np.int64)
    transit[lab["pickup_failure"]] += 6 * HOUR  # the retry pickup comes ~5 h later
    late_p = np.full(n, incidents.LATE_SHARE_HEALTHY)
    if any(i.kind == "region_late_deliveries" for i in found):
        late_p[region] = incidents.LATE_SHARE_INCIDENT
    late = shipped & ~taken & (rng.random(n) < late_p)
    transit[late] = sla[late] + rng.integers(3 * HOUR, 36 * HOUR, size=int(late.sum()))
    arrive = ship_at + transit
    promised = ship_at + sla
    lab["delivery_timeout"] = late & (end >= promised)
    taken |= lab["delivery_timeout"]
    reject = shipped & (rng.random(n) < 0.012) & (arrive <= end) & ~taken
    ev["reject"][reject] = arrive[reject]
    delivered = shipped & ~reject & (arrive <= end)
    ev["deliver"][delivered] = arrive[delivered]
    ev["deliver"][is_pos & paid] = pay_at[is_pos & paid]  # taken over the counter
    after = rng.random(n)
    ret_at = arrive + rng.integers(12 * HOUR, 72 * HOUR, size=n)
    returned = delivered & (after < 0.05) & (ret_at <= end)
    ev["return"][returned] = ret_at[returned]
    refund_at = ret_at + rng.integers(6 * HOUR, 24 * HOUR, size=n)
    ok = returned & (refund_at <= end)
    ev["refund"][ok] = refund_at[ok]
    refund_only_at = arrive + rng.integers(2 * HOUR, 48 * HOUR, size=n)
    ok = delivered & (after >= 0.05) & (after < 0.06) & (refund_only_at <= end)
    ev["refund"][ok] = refund_only_at[ok]
    # return interceptions: the buyer cancels while the parcel travels; a stopped parcel goes
    # back (no delivery), a failed interception is delivered all the same
    cands = delivered & (ev["return"] < 0) & (ev["refund"] < 0) & ~taken & ~is_pos
    cands &= arrive - ship_at >= 12 * HOUR
    failing = incidents.preferred(channels, incidents.INTERCEPT_CHANNELS) if plant else -1
    tried, failed, asked = incidents.interceptions(
        irng, cands, channel, ship_at, arrive, end, failing
    )
    ev["refund"][tried] = asked[tried]
    ev["deliver"][tried & ~failed] = NONE
    taken |= tried
    bad = failed & (channel == failing)
    if bad.any():
        attempts = int((tried & (channel == failing)).sum())
        found.append(Incident(
            "return_interception_failed", {"channel": channels[failing]}, int(asked[bad].min()),
            end, {"attempts": attempts, "failed": int(bad.sum())},
        ))  # fmt: skip
    if not calm:  # its WMS stopped pushing stock numbers (the routing circuit breaker's case)
        found.append(Incident(
            "stock_sync_stale", {"warehouse": incidents.STALE_WAREHOUSE},
            end - incidents.STALE_SYNC_MINUTES * 60, end,
        ))  # fmt: skip

    del fate, t, ok, ship_delay, transit, arrive, ret_at, refund_at, refund_only_at, after
    del lat, lon, province, late_p, promised, dist, all_hot, sla, stuck_pool, timeout, intends
    del cands, tried, failed, asked, bad
    # late_status_update: the platform reports the last post-payment event 1-8 h late
    last = np.max(np.stack([ev[k] for k in EVENT_ORDER]), axis=0)
    late_pool = (last > 0) & (last <= end - 2 * HOUR) & ~is_pos
    late_delay = np.zeros(n, np.int64)
    chosen = pick(max(1, int(late_pool.sum() * 0.015)), late_pool)
    room = end - last[chosen]
    late_delay[chosen] = rng.integers(HOUR, np.minimum(8 * HOUR, room) + 1)
    lab["late_status_update"][chosen] = True
    del last, late_pool, room

    # -- amounts (cents): coupons never exceed 27 % of goods unless stacked on purpose
    shop_c = np.where(rng.random(n) < 0.3, rng.choice([300, 500, 1000, 2000, 3000], n), 0)
    shop_c = np.minimum(shop_c, goods * 15 // 100 // 100 * 100)
    plat_c = rng.choice([200, 300, 500, 800, 1000, 1500], n)
    plat_c[~is_market | (rng.random(n) >= 0.25)] = 0
    plat_c = np.minimum(plat_c, goods * 12 // 100 // 100 * 100)
    shop_c[is_pos] = plat_c[is_pos] = 0
    plat_c[stacked] = goods[stacked] * 20 // 100
    shop_c[stacked] = goods[stacked] * 15 // 100
    freight = np.where(goods < 9900, rng.choice([600, 800, 1000], n), 0)
    freight[remote] += 1500
    freight[abroad] = rng.choice([3000, 4500, 6000, 8000], int(abroad.sum()))
    freight[is_pos] = 0

    # the hidden verdicts' coupons (drawn with the actors' own generator, after the others)
    fraud_actors.apply_coupons(frng, coupon_draws, goods, shop_c, plat_c, is_market)

    # -- labels that follow from the data
    pay_hour = ((ev["pay"] + BJ) // HOUR) % 24
    lab["night_payment"] = paid & (pay_hour >= 2) & (pay_hour < 4)
    lab["virtual_carrier_phone"] = p_phone[person] // 10**8 >= n_prefix
    lab["cross_border"] = abroad
    lab["remote_region"] = remote
    lab["b2b_address"] = p_b2b[person]
    lab["customs_incomplete"] = abroad & (rng.random(n) < 0.1)
    ended = (ev["ship"] >= 0) | (ev["cancel"] >= 0) | (ev["refund"] >= 0)
    lab["stuck_order"] = paid & ~is_pos & ~ended & (pay_at <= end - 48 * HOUR)
    # a merge candidate as the merchant sees it: both orders still go out by parcel (not the
    # counter), neither cancelled nor refunded, and the receiver visible (PDD shows it only
    # while an order is paid and awaiting shipment: docs/channels.md)
    closed = (ev["cancel"] >= 0) | (ev["refund"] >= 0)
    hidden = (ch_names_o == "pdd") & (~paid | (ev["ship"] >= 0))
    lab["duplicate_order"] = _within_30_min(person, created, ~is_pos & ~closed & ~hidden)
    lab["coupon_stacking"] = _coupon_stacking(person, ev["pay"], goods, shop_c, plat_c, channel)

    note = np.where(rng.random(n) < 0.08, rng.integers(len(people.BUYER_NOTES), size=n), -1)
    seller_note = np.where(rng.random(n) < 0.03, rng.integers(len(people.SELLER_NOTES), size=n), -1)
    i16, i32 = np.int16, np.int32  # compact dtypes: the plan of 1 M orders stays ~200 MB
    return WorldPlan(
        start=plan_start, end=end, channels=tuple(channels), skus=skus, shops=shop_map,
        shop_ids=shop_ids, p_district=p_district.astype(i16), p_abroad=p_abroad.astype(np.int8),
        p_b2b=p_b2b, p_phone=p_phone, p_name=p_name.astype(i16), p_addr=p_addr.astype(i16),
        p_ip=p_ip.astype(np.uint32), channel=channel, shop=shop.astype(i16),
        person=person.astype(i32), ip=ip.astype(np.uint32), created=created, ev=ev,
        freight=freight.astype(i32), shop_coupon=shop_c.astype(i32),
        platform_coupon=plat_c.astype(i32), item_start=item_start, item_sku=item_sku.astype(i16),
        item_qty=item_qty.astype(np.int8), item_price=item_price.astype(i32), labels=lab,
        note=note.astype(np.int8), seller_note=seller_note.astype(np.int8),
        late_delay=late_delay.astype(i32), oversold=oversold, incidents=found, calm=calm,
        p_device=p_device,
    )  # fmt: skip


def _creation_times(rng: np.random.Generator, n: int, start: int, end: int) -> np.ndarray:
    """`n` sorted unix times in [start, end - 60) following the Beijing hour-of-day curve."""
    out: list[np.ndarray] = []
    have = 0
    accept = _HOUR_WEIGHT / _HOUR_WEIGHT.max()
    while have < n:
        t = rng.integers(start, end - 60, size=max(1024, 2 * (n - have)))
        keep = t[rng.random(len(t)) < accept[((t + BJ) // HOUR) % 24]]
        out.append(keep)
        have += len(keep)
    return np.sort(np.concatenate(out)[:n]) if out else np.zeros(0, np.int64)


def _cross_channel(
    b: np.ndarray,
    delta: np.ndarray,
    channel: np.ndarray,
    shop: np.ndarray,
    channels: Sequence[str],
    shop_base: dict[str, int],
) -> None:
    """Move the second orders `b` of duplicate pairs to another channel that ships (never POS),
    picked from the pair's own delay (no new draw: the rest of every world stays as it was)."""
    ships = np.array([i for i, c in enumerate(channels) if c != "pos"])
    if len(ships) < 2 or len(b) == 0:
        return
    at = np.searchsorted(ships, channel[b])
    other = ships[(at + 1 + delta % (len(ships) - 1)) % len(ships)]
    channel[b] = other
    shop[b] = [shop_base[channels[c]] for c in other]


def _within_30_min(person: np.ndarray, created: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Orders of one buyer (same phone and address) created within 30 min of another, both
    `among` the orders that count."""
    keep = np.flatnonzero(among)
    person, created = person[keep], created[keep]
    order = np.lexsort((created, person))
    p, c = person[order], created[order]
    close = (p[1:] == p[:-1]) & (c[1:] - c[:-1] <= 1800)
    hit = np.zeros(len(among), bool)
    hit[keep[order[1:][close]]] = True
    hit[keep[order[:-1][close]]] = True
    return hit


def _coupon_stacking(person, pay, goods, shop_c, plat_c, channel) -> np.ndarray:  # noqa: ANN001
    """Per buyer and Beijing day of payment: coupons > 30 % of goods, or platform coupons on two
    or more channels; marks that day's orders of the buyer that used a coupon."""
    df = pd.DataFrame({
        "person": person, "day": (pay + BJ) // 86400, "goods": goods,
        "coupons": shop_c + plat_c, "plat_ch": np.where(plat_c > 0, channel, -1),
    })  # fmt: skip
    df = df[pay >= 0]
    g = df.groupby(["person", "day"])
    ratio = g["coupons"].transform("sum") > 0.30 * g["goods"].transform("sum")
    chans = df["plat_ch"].where(df["plat_ch"] >= 0)
    multi = chans.groupby([df["person"], df["day"]]).transform("nunique") >= 2
    hit = np.zeros(len(person), bool)
    sel = (ratio | multi) & (df["coupons"] > 0)
    hit[df.index[sel.to_numpy()]] = True
    return hit
