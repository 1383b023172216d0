"""The deterministic world generator: a merchant's business over simulated time.

`generate_world(seed, orders, days, end)` returns a `World`: orders on all channels, shops,
the SKU catalogue, warehouses with stock, and the merchant-side records derived from the
orders (WMS events, stock movements, carrier tracking, CS tickets, behaviour log; see
`sandbox.merchant_systems_records`). Same arguments, same world. `end` is the world's "now":
every timestamp is <= end, the gateways serve the past.

Two steps: `sandbox.world_plan` draws every order attribute column-wise with numpy (the only
randomness), then this module materialises the plan into `Order` objects with
`model_construct` (no validation: the generator guarantees what the validators check). For
large volumes use `iter_orders(...)`, which yields the very same orders as
`generate_world(...).orders` in chunks of 20 k without keeping them (1 M orders: ~40 s and
~0.8 GiB peak RSS on the reference machine); `generate_world` keeps every order and all
merchant-side records in memory and is meant for up to ~200 k orders (10 k: ~2 s).

Injected anomalies are recorded in `Order.labels` under stable names (`LABELS`, each described
in `sandbox.world_plan`); planted incidents in `World.incidents` (the truth's `"incidents"`,
see `sandbox.incidents`). `calm=True` gives a world without incidents.
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from sandbox import geo, people
from sandbox.catalog import WAREHOUSES, Shop, Sku, Warehouse
from sandbox.gateways import per_channel
from sandbox.incidents import truth_list
from sandbox.model import CHANNELS, Coupon, Customs, Event, Item, Order, Receiver
from sandbox.world_plan import (
    BJ,
    CHANNEL_SHARE,
    CROSS_BORDER_CHANNELS,
    EVENT_ORDER,
    HOUR,
    LABELS,
    VERDICTS,
    WorldPlan,
    plan_world,
)

# One set of field names per model, shared by every instance built here: pydantic keeps the
# names given to each instance in a set of its own (~2.4 KB an order with its lines, events and
# receiver, a fifth of a world's memory). The set holds every field, so pydantic's `add` on an
# assignment changes nothing and `model_copy` copies it before updating.
_FIELDS = {cls: set(cls.model_fields) for cls in (Coupon, Customs, Event, Item, Order, Receiver)}

# the world's public names, importable from here as before the plan moved out
__all__ = [
    "CHANNEL_SHARE", "CROSS_BORDER_CHANNELS", "LABELS", "LateUpdate", "World", "default_end",
    "generate_world", "iter_orders", "late_update_for", "order_number", "paused_gc", "VERDICTS",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LateUpdate:
    """The platform shows `event_type` (which happened at `happened_at`) only from `visible_at`."""

    event_type: str
    happened_at: datetime
    visible_at: datetime


@dataclass
class World:
    seed: int
    start: datetime
    end: datetime
    orders: list[Order]
    shops: dict[str, list[Shop]]
    skus: list[Sku]
    warehouses: list[Warehouse]
    stock: list = field(default_factory=list)  # list[StockLevel]
    stock_movements: list = field(default_factory=list)  # list[StockMovement]
    wms_events: list = field(default_factory=list)  # list[WmsEvent]
    shipments: list = field(default_factory=list)  # list[Shipment]
    tracking_events: list = field(default_factory=list)  # list[TrackingEvent]
    cs_tickets: list = field(default_factory=list)  # list[CsTicket]
    behaviour_log: list = field(default_factory=list)  # list[BehaviourEvent]
    risk_feedback: list = field(default_factory=list)  # list[RiskFeedback]: chargebacks, audits
    late_updates: dict[tuple[str, str], LateUpdate] = field(default_factory=dict)
    oversold_skus: list[str] = field(default_factory=list)
    extra_skus: list[str] = field(default_factory=list)  # added by a scenario: stocked everywhere
    incidents: list[dict] = field(default_factory=list)  # truth form (sandbox.incidents)
    calm: bool = False
    # buyer_id -> device fingerprint for buyers on a shared device (fraud rings, family
    # tablets); every other buyer shows its phone model in the behaviour log
    devices: dict[str, str] = field(default_factory=dict)

    def sku(self, code: str) -> Sku | None:
        return next((s for s in self.skus if s.sku == code), None)

    def platform_modified_at(self, order: Order) -> datetime:
        """When the platform last changed the order as its API reports it (late updates lag)."""
        late = self.late_updates.get((order.channel, order.platform_order_no))
        return late.visible_at if late else order.modified_at

    def platform_events(self, order: Order, now: datetime | None = None) -> list[Event]:
        """The order's events the platform shows at `now` (a late update is hidden until it
        becomes visible)."""
        late = self.late_updates.get((order.channel, order.platform_order_no))
        events = [e for e in order.events if now is None or e.at <= now]
        if late is not None and now is not None and now < late.visible_at:
            events = [
                e for e in events if not (e.type == late.event_type and e.at == late.happened_at)
            ]
        return events

    def orders_of(self, channel: str) -> list[Order]:
        return [o for o in self.orders if o.channel == channel]


def late_update_for(order: Order, end: datetime) -> LateUpdate | None:
    """A 1-8 h lag (stable per order, never past `end`) for the order's last event."""
    if not order.events or order.events[-1].at >= end:
        return None
    last = order.events[-1]
    lag = timedelta(seconds=HOUR + zlib.crc32(order.platform_order_no.encode()) % (7 * HOUR))
    return LateUpdate(last.type, last.at, min(last.at + lag, end))


def default_end() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def generate_world(
    seed: int = 7,
    orders: int = 10_000,
    days: int = 3,
    end: datetime | None = None,
    channels: tuple[str, ...] = CHANNELS,
    calm: bool = False,
    records: bool = True,
) -> World:
    """A whole deterministic world (orders + merchant-side records), everything <= `end`;
    `calm`: without incidents. `records=False` leaves the merchant-side records empty, for a
    caller that rebuilds them anyway (`sandbox.scenario.merge_scenario`): built twice, the
    first set stayed alive beside the second, 2.6 GB of a million-order sandbox's peak."""
    from sandbox.merchant_systems_records import build_merchant_systems_records  # from the orders

    plan = plan_world(seed, orders, days, end or default_end(), channels, calm)
    order_list = [o for chunk in _materialise(plan) for o in chunk]
    with paused_gc():
        world = _assemble(seed, plan, order_list)
        if records:
            build_merchant_systems_records(world)
    return world


def _assemble(seed: int, plan: WorldPlan, order_list: list[Order]) -> World:
    return World(
        seed=seed,
        start=_dt(plan.start),
        end=_dt(plan.end),
        orders=order_list,
        shops=plan.shops,
        skus=plan.skus,
        warehouses=list(WAREHOUSES),
        late_updates=_late_updates(plan, order_list),
        oversold_skus=[plan.skus[i].sku for i in plan.oversold],
        incidents=_incidents(plan, order_list),
        calm=plan.calm,
        devices=_devices(plan),
    )


def _devices(plan: WorldPlan) -> dict[str, str]:
    if plan.p_device is None:
        return {}
    return {
        f"B{p + 1:08d}": people.device_fingerprint(int(plan.p_device[p]))
        for p in np.flatnonzero(plan.p_device >= 0)
    }


def _incidents(plan: WorldPlan, orders: list[Order]) -> list[dict]:
    """The plan's incidents in truth form, the order one concerns named by its key."""
    for incident in plan.incidents:
        if incident.order >= 0:
            o = orders[incident.order]
            incident.subject = {"channel": o.channel, "platform_order_no": o.platform_order_no}
    return truth_list(plan.incidents)


def iter_orders(
    seed: int = 7,
    orders: int = 10_000,
    days: int = 3,
    end: datetime | None = None,
    channels: tuple[str, ...] = CHANNELS,
    chunk_size: int = 20_000,
    calm: bool = False,
) -> Iterator[list[Order]]:
    """The orders of `generate_world(seed, orders, days, end, channels, calm)`, in chunks
    (streaming: only the numpy column plan and one chunk of `Order` objects are alive at a
    time)."""
    plan = plan_world(seed, orders, days, end or default_end(), channels, calm)
    yield from _materialise(plan, chunk_size)


def _late_updates(plan: WorldPlan, orders: list[Order]) -> dict[tuple[str, str], LateUpdate]:
    """The plan's late-shown last events, keyed like the orders they belong to."""
    out = {}
    for i in np.flatnonzero(plan.late_delay):
        o = orders[i]
        last = o.events[-1]
        out[(o.channel, o.platform_order_no)] = LateUpdate(
            last.type, last.at, last.at + timedelta(seconds=int(plan.late_delay[i]))
        )
    return out


# -- materialising Order objects ---------------------------------------------------------------
_DEC: dict[int, Decimal] = {}


def _dec(cents: int) -> Decimal:
    d = _DEC.get(cents)
    if d is None:
        d = _DEC[cents] = Decimal(cents).scaleb(-2)
    return d


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


# Each channel's order number from (index i, Beijing creation time t, per-order salt s), in
# the platform's own shape; unique per (channel, index). A marketplace's shape is its
# gateway's `order_number`, the other channels' are here.
_ORDER_NUMBERS: dict[str, Callable[[int, datetime, int], str]] = per_channel(
    "order_number",
    {
        "h5mall": lambda i, t, s: f"H5{t:%Y%m%d}{i:08d}",
        "pos": lambda i, t, s: f"POS{t:%Y%m%d}{i:08d}",
        "regional_a": lambda i, t, s: f"RA{t:%Y%m%d}{i:08d}",
        "regional_b": lambda i, t, s: f"RB{i:010d}",
    },
)


def order_number(channel: str, idx: int, created: int, salt: int) -> str:
    """A platform order number in the channel's own shape, unique per (channel, idx)."""
    # the shapes print Beijing wall-clock time (a UTC datetime shifted by 8 h)
    return _ORDER_NUMBERS[channel](idx, datetime.fromtimestamp(created + BJ, UTC), salt)


def _materialise(plan: WorldPlan, chunk_size: int = 20_000) -> Iterator[list[Order]]:
    """Build `Order` objects chunk by chunk (columns turned into Python lists per chunk: numpy
    scalar access per field would dominate the cost)."""
    skus = plan.skus
    ctx = {
        "ds": geo.districts(),
        "titles": [s.title for s in skus],
        "sku_codes": [s.sku for s in skus],
        "hs_codes": [s.hs_code for s in skus],
        "prefixes": people.MOBILE_PREFIXES + people.VIRTUAL_PREFIXES,
        "label_names": list(LABELS + VERDICTS),
        "label_matrix": np.stack([plan.labels[k] for k in LABELS + VERDICTS], axis=1),
        "ev_matrix": np.stack([plan.ev[k] for k in EVENT_ORDER], axis=1),
        # index -1 (no note) picks the trailing None
        "buyer_notes": (*people.BUYER_NOTES, None),
        "seller_notes": (*people.SELLER_NOTES, None),
        "salt": np.random.default_rng([plan.end // 86400, 99]).integers(10**9, size=plan.n + 1),
    }
    for lo in range(0, plan.n, chunk_size):
        with paused_gc():
            chunk = _chunk(plan, lo, min(plan.n, lo + chunk_size), ctx)
        yield chunk


def _chunk(plan: WorldPlan, lo: int, hi: int, ctx: dict) -> list[Order]:
    ds, prefixes, label_names = ctx["ds"], ctx["prefixes"], ctx["label_names"]
    sku_codes, titles, hs_codes = ctx["sku_codes"], ctx["titles"], ctx["hs_codes"]
    label_matrix, ev_matrix, salt = ctx["label_matrix"], ctx["ev_matrix"], ctx["salt"]
    incomplete = plan.labels["customs_incomplete"]
    buyer_notes, seller_notes = ctx["buyer_notes"], ctx["seller_notes"]
    persons = plan.person[lo:hi]
    receivers = _receivers(plan, persons, ds, prefixes)
    labels: dict[int, list[str]] = {}
    for row, col in zip(*np.nonzero(label_matrix[lo:hi]), strict=True):
        labels.setdefault(int(row), []).append(label_names[col])
    cols = zip(
        plan.channel[lo:hi].tolist(), persons.tolist(), plan.shop[lo:hi].tolist(),
        plan.created[lo:hi].tolist(), plan.ip[lo:hi].tolist(), plan.freight[lo:hi].tolist(),
        plan.platform_coupon[lo:hi].tolist(), plan.shop_coupon[lo:hi].tolist(),
        plan.note[lo:hi].tolist(), plan.seller_note[lo:hi].tolist(),
        ev_matrix[lo:hi].tolist(), salt[lo:hi].tolist(), receivers,
        strict=True,
    )  # fmt: skip
    first, last = int(plan.item_start[lo]), int(plan.item_start[hi])
    starts = (plan.item_start[lo : hi + 1] - first).tolist()
    i_sku = plan.item_sku[first:last].tolist()
    i_qty = plan.item_qty[first:last].tolist()
    i_price = plan.item_price[first:last].tolist()
    chunk: list[Order] = []
    for j, (
        c,
        p,
        shop,
        created,
        ip,
        freight,
        plat_c,
        shop_c,
        note,
        s_note,
        evrow,
        sa,
        rcv,
    ) in enumerate(cols):
        i = lo + j
        ch = plan.channels[c]
        a, b = starts[j], starts[j + 1]
        items = [
            Item.model_construct(
                _fields_set=_FIELDS[Item],
                sku=sku_codes[k],
                qty=i_qty[x],
                price=_dec(i_price[x]),
                title=titles[k],
            )
            for x, k in zip(range(a, b), i_sku[a:b], strict=True)
        ]
        coupons = []
        if plat_c:
            coupons.append(_coupon(f"PLT-{ch.upper()}-{plat_c // 100}", "platform", plat_c))
        if shop_c:
            coupons.append(_coupon(f"SHOP-{shop_c // 100}OFF", "shop", shop_c))
        events = [
            (ts, k) for k, ts in enumerate(evrow) if ts >= 0
        ]  # same-second events keep the lifecycle order of EVENT_ORDER
        events.sort()
        abroad = int(plan.p_abroad[p])
        customs = None
        if abroad >= 0:
            customs = Customs.model_construct(
                _fields_set=_FIELDS[Customs],
                hs_code=None if incomplete[i] else hs_codes[i_sku[a]],
                declared_value=sum((it.price * it.qty for it in items), Decimal("0")),
                declared_currency="CNY",
                origin_country="CN",
            )
        pay = evrow[0]
        chunk.append(
            Order.model_construct(
                _fields_set=_FIELDS[Order],
                channel=ch,
                platform_order_no=order_number(ch, i, created, sa),
                shop_id=plan.shop_ids[shop],
                created_at=_dt(created),
                paid_at=_dt(pay) if pay >= 0 else None,
                buyer_id=f"B{p + 1:08d}",
                buyer_ip=geo.ip_string(ip),
                receiver=rcv,
                items=items,
                freight=_dec(freight),
                coupons=coupons,
                country=geo.ABROAD[abroad].country if abroad >= 0 else "CN",
                customs=customs,
                events=[
                    Event.model_construct(
                        _fields_set=_FIELDS[Event], at=_dt(ts), type=EVENT_ORDER[k]
                    )
                    for ts, k in events
                ],
                buyer_note=buyer_notes[note],
                seller_note=seller_notes[s_note],
                labels=labels.get(j, []),
            )
        )
    return chunk


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects: with a large
    live heap its generation scans otherwise cost more than building the orders."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _coupon(code: str, issuer: str, cents: int) -> Coupon:
    return Coupon.model_construct(
        _fields_set=_FIELDS[Coupon], code=code, issuer=issuer, amount=_dec(cents)
    )


def _receivers(plan: WorldPlan, persons: np.ndarray, ds, prefixes) -> list[Receiver]:  # noqa: ANN001
    names = plan.p_name[persons].tolist()
    addrs = plan.p_addr[persons].tolist()
    abroad = plan.p_abroad[persons].tolist()
    phones = plan.p_phone[persons].tolist()
    b2b = plan.p_b2b[persons].tolist()
    district = plan.p_district[persons].tolist()
    out = []
    for (surname, g1, g2), (road, number, community, building, room), ab, digits, biz, d in zip(
        names, addrs, abroad, phones, b2b, district, strict=True
    ):
        name = people.person_name(surname, g1, g2)
        if ab >= 0:
            a, street = geo.abroad_address(ab, number)
            out.append(Receiver.model_construct(_fields_set=_FIELDS[Receiver], 
                name=name, phone=f"{a.phone_prefix}{digits % 10**7:07d}", province=a.province,
                city=a.city, district=a.district, address=street,
            ))  # fmt: skip
            continue
        dist = ds[d]
        if biz:
            address = _office_address(road, number, community, building, room)
        else:
            address = geo.home_address(road, number, community, building, room)
        out.append(Receiver.model_construct(_fields_set=_FIELDS[Receiver], 
            name=name, phone=f"{prefixes[digits // 10**8]}{digits % 10**8:08d}",
            province=dist.province, city=dist.city, district=dist.district, address=address,
        ))  # fmt: skip
    return out


# offices are written several ways: a company in a park, or a room in a tower (大厦/写字楼)
_TOWERS = ("国际大厦", "中心写字楼", "商务大厦", "金融大厦")


def _office_address(road: int, number: int, park: int, company: int, room: int) -> str:
    kind = (road + number) % 3
    if kind == 0:
        return geo.business_address(road, number, park, company, room // 100)
    tower = _TOWERS[(park + company) % len(_TOWERS)]
    company_name = geo.COMPANIES[company % len(geo.COMPANIES)]
    if kind == 1:
        return f"{geo.ROADS[road % len(geo.ROADS)]}{number}号{tower}{room}室 {company_name}"
    return f"{geo.ROADS[road % len(geo.ROADS)]}{number}号{tower}{room // 100}层 办公室"
