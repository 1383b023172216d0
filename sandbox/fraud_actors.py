"""The latent risk truth of a world: who is a fraudster, a coupon farmer or an honest buyer.

`plant_actors(...)` runs in `sandbox.world_plan.plan_world` before the delivery promise is
drawn (which follows the receiver's district), and `apply_coupons` at the end, with their own
generator (so every draw of the rest of the world stays as it was), and changes only the
identity of chosen orders (buyer account, IP, receiver phone and address, device) and, for
coupon farmers and bargain hunters, their coupons: never a time, an item or a channel, so the
planted incidents and the channel matching keep their truth. It returns the per-order
verdicts (`fraud`, `coupon_abuse`) that go into `Order.labels` beside the signal labels, and
the device fingerprints the behaviour log shows.

The generative story (rates per world of n orders; counts round down, at least one of each
actor once n >= 1,000; a calm world plants none):
- Fraud rings (n / 4,000): 4-9 fake accounts, each placing one order inside a two-day window,
  goods drawn in proportion to value (resalable). The ring owns one proxy IP, one receiver
  phone (a 170/171 number one time in three), one drop address and one device; each account
  independently uses the IP with p 0.5, the phone with p 0.45, the address with p 0.45 and the
  device with p 0.5. A rule sees a shared identifier only when 3+ accounts happen to use it,
  so some ring orders show nothing.
- Card testers (n / 6,000): one or two accounts placing 3-9 cheap orders inside one hour,
  six times in ten at night (00:00-05:00 Beijing), from the tester's IP with p 0.85 per order,
  a 170/171 phone with p 0.5, a cart-toggling bot before an order with p 0.25.
- Coupon farmers (n / 5,000): 3-7 accounts, one order each inside three days, with coupons
  of 18-45 % of the goods (so the 30 % daily-subsidy rule catches about half), shipping to the
  farmer's address with p 0.6, to the farmer's phone with p 0.3, on a 170/171 SIM with p 0.4.
- The anomalies `sandbox.world_plan` already injects keep their story: the IP-burst farms are
  fraud, the cross-platform coupon stackers coupon abuse. Everything else is honest.
- Honest look-alikes: families (n / 1,500 households of 3-4 buyers) share the router's IP and
  the home address, and a tablet (one device) with p 0.3 per member; bargain hunters (0.3 % of
  honest orders) stack festival coupons to 31-40 % of the goods; night owls (the natural
  02:00-04:00 tail of the day curve), MVNO users (0.8 % of buyers on 170/171) and offices
  (3 % of buyers ship to 公司/大厦/写字楼/办公室) are honest too; cart bots injected as
  `cart_churn` on random orders are price-watch plugins of honest shoppers.
Only single-order, paid, domestic orders outside POS, remote regions and the late region, and
not already carrying an injected anomaly or an incident, become actors or look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = 86400
HOUR = 3600
BJ = 8 * 3600
VERDICTS = ("fraud", "coupon_abuse")


@dataclass
class People:
    """The per-person columns an actor may change (changed in place)."""

    phone: np.ndarray  # prefix index * 10**8 + 8 digits
    addr: np.ndarray  # (P, 5)
    district: np.ndarray
    b2b: np.ndarray
    ip: np.ndarray
    device: np.ndarray  # -1 = the buyer's own phone model, else a fingerprint number
    n_prefix: int  # prefixes from here on are virtual (170/171)
    n_virtual: int


@dataclass
class OrdersView:
    """The per-order columns an actor may change (changed in place) or reads."""

    person: np.ndarray
    ip: np.ndarray
    created: np.ndarray
    goods: np.ndarray  # cents
    is_market: np.ndarray
    cart_churn: np.ndarray


def plant_actors(
    rng: np.random.Generator,
    people: People,
    orders: OrdersView,
    eligible: np.ndarray,
    start: int,
    end: int,
    ip_octets: np.ndarray,
) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, float, float]]]:
    """Plant the actors of the story above; returns {verdict: bool mask over orders} and the
    coupon draws for `apply_coupons` (rows, lowest and highest share of the goods)."""
    n = len(orders.person)
    fraud = np.zeros(n, bool)
    abuse = np.zeros(n, bool)
    coupons: list[tuple[np.ndarray, float, float]] = []
    counts = np.bincount(orders.person, minlength=len(people.phone))
    free = eligible & (counts[orders.person] == 1)
    many = n >= 1000
    next_device = [0]

    def new_ip() -> int:
        return int(ip_octets[rng.integers(len(ip_octets))]) << 24 | int(rng.integers(1 << 24))

    def new_device() -> int:
        next_device[0] += 1
        return next_device[0] * 7919 + int(rng.integers(7919))

    def virtual(persons: np.ndarray) -> None:
        digits = people.phone[persons] % 10**8
        prefix = people.n_prefix + rng.integers(people.n_virtual, size=len(persons))
        people.phone[persons] = prefix * 10**8 + digits

    def choose(k: int, lo: int, hi: int, weight: np.ndarray | None, mask=None) -> np.ndarray:  # noqa: ANN001
        cand = np.flatnonzero(
            free & (orders.created >= lo) & (orders.created < hi) & (True if mask is None else mask)
        )
        if len(cand) < 2:
            return np.empty(0, np.int64)
        p = None if weight is None else weight[cand] / weight[cand].sum()
        chosen = rng.choice(cand, min(k, len(cand)), replace=False, p=p)
        free[chosen] = False
        return np.sort(chosen)

    def share_home(members: np.ndarray, use: np.ndarray, home: int) -> None:
        who = members[use]
        people.addr[who] = people.addr[home]
        people.district[who] = people.district[home]
        people.b2b[who] = people.b2b[home]

    goods = orders.goods.astype(float) + 1.0
    span = end - start

    # fraud rings: fake accounts sharing a proxy IP, a drop phone, a drop address, a device
    for _ in range(max(1, n // 4000) if many else 0):
        window = min(span, 2 * DAY)
        t0 = int(rng.integers(start, end - window + 1))
        chosen = choose(int(rng.integers(4, 10)), t0, t0 + window, goods)
        if len(chosen) < 3:
            continue
        members = orders.person[chosen]
        drop = int(members[0])
        if rng.random() < 1 / 3:
            virtual(np.array([drop]))
        ring_ip, ring_device, ring_phone = new_ip(), new_device(), people.phone[drop]
        use = rng.random((len(chosen), 4)) < np.array([0.5, 0.45, 0.45, 0.5])
        orders.ip[chosen[use[:, 0]]] = ring_ip
        people.phone[members[use[:, 1]]] = ring_phone
        share_home(members, use[:, 2], drop)
        people.device[members[use[:, 3]]] = ring_device
        fraud[chosen] = True

    # card testers: a burst of cheap orders within an hour, mostly at night
    for _ in range(max(1, n // 6000) if many else 0):
        if rng.random() < 0.6:
            day = int(rng.integers((start + BJ) // DAY + 1, (end + BJ) // DAY + 1))
            t0 = day * DAY - BJ + int(rng.integers(0, 4 * HOUR))
        else:
            t0 = int(rng.integers(start, end - HOUR))
        chosen = choose(int(rng.integers(3, 10)), t0, t0 + HOUR, 1.0 / goods)
        if len(chosen) < 2:
            continue
        accounts = orders.person[chosen[: int(rng.integers(1, 3))]]
        orders.person[chosen] = accounts[rng.integers(len(accounts), size=len(chosen))]
        if rng.random() < 0.5:
            virtual(accounts)
        tester_ip = new_ip()
        orders.ip[chosen[rng.random(len(chosen)) < 0.85]] = tester_ip
        orders.cart_churn[chosen[rng.random(len(chosen)) < 0.25]] = True
        fraud[chosen] = True

    # coupon farmers: accounts with heavy coupons, often shipping to the farmer
    for _ in range(max(1, n // 5000) if many else 0):
        window = min(span, 3 * DAY)
        t0 = int(rng.integers(start, end - window + 1))
        chosen = choose(int(rng.integers(3, 8)), t0, t0 + window, None)
        if len(chosen) < 2:
            continue
        coupons.append((chosen, 0.18, 0.45))
        members = orders.person[chosen]
        farmer = int(members[0])
        use = rng.random((len(chosen), 3)) < np.array([0.6, 0.3, 0.4])
        share_home(members, use[:, 0], farmer)
        people.phone[members[use[:, 1]]] = people.phone[farmer]
        virtual(members[use[:, 2] & ~use[:, 1]])
        abuse[chosen] = True

    # honest families behind one router (and now and then one tablet)
    for _ in range(n // 1500):
        chosen = choose(int(rng.integers(3, 5)), start, end, None)
        if len(chosen) < 3:
            continue
        members = orders.person[chosen]
        home_ip = new_ip()
        orders.ip[chosen] = home_ip
        people.ip[members] = home_ip
        share_home(members, np.ones(len(members), bool), int(members[0]))
        tablet = rng.random(len(chosen)) < 0.3
        people.device[members[tablet]] = new_device()

    # honest bargain hunters: festival coupons above 30 % of the goods
    hunters = np.flatnonzero(free & (rng.random(n) < 0.003))
    coupons.append((hunters, 0.31, 0.40))
    return {"fraud": fraud, "coupon_abuse": abuse}, coupons


def apply_coupons(
    rng: np.random.Generator,
    draws: list[tuple[np.ndarray, float, float]],
    goods: np.ndarray,
    shop_coupon: np.ndarray,
    platform_coupon: np.ndarray,
    is_market: np.ndarray,
) -> None:
    """Coupons worth lo..hi of the goods on each drawn row, split between the platform (on
    marketplaces) and the shop (changed in place; after the world's own coupons)."""
    for rows, lo, hi in draws:
        total = (goods[rows] * rng.uniform(lo, hi, len(rows))).astype(np.int64)
        platform = np.where(is_market[rows], total * rng.uniform(0.4, 0.7, len(rows)), 0)
        platform = platform.astype(np.int64)
        platform_coupon[rows] = platform
        shop_coupon[rows] = total - platform
