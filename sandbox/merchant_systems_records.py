"""The merchant's own systems' records, derived from the orders: WMS (stock levels, stock
movements, pick/pack/ship events), carrier tracking, the CS desk and the storefront behaviour log.

`build_merchant_systems_records(world)` fills the World's record lists from `world.orders`
(and rebuilds them after a scenario merge). Everything is deterministic (per-order RNGs seeded
from the world seed and the order key) and nothing is later than `world.end`. Records are
sorted by time and their ids follow that order, so `(time, id)` is a stable paging key.

What the anomaly labels mean here: `pickup_failure` -> a `pickup_failed` carrier event before
the successful retry; `delivery_timeout` -> `promised_at` passes before delivery; `oversold_sku`
-> an `allocate_failed` WMS event and negative `available` stock for that SKU; `stuck_order` ->
allocated but never picked; `cart_churn` -> > 20 cart add/remove events within a minute.

What the incidents (`world.incidents`) mean here: `stock_sync_stale` -> that warehouse's stock
last synced 47 minutes before the end (every other warehouse within 4); `cs_escalation` -> three
tickets on the order within its span, with complaint words; a parcel refunded while it travels
and never delivered was intercepted -> a `returning` carrier event. A calm world keeps every
warehouse's stock above the safety line.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from sandbox import geo, people
from sandbox.catalog import CARRIERS, WAREHOUSES, assign_warehouses
from sandbox.incidents import ESCALATION_TICKETS, STALE_SYNC_MINUTES
from sandbox.model import Order
from sandbox.risk_feedback import draw_risk_feedback

if TYPE_CHECKING:
    from sandbox.world import World

SAFETY_STOCK = 10


def record_dict(record: Any) -> dict[str, Any]:
    """A record as JSON-ready values (ISO 8601 times, decimal strings)."""
    out = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[f.name] = value
    return out


@dataclass(frozen=True, slots=True)
class StockLevel:
    warehouse_id: str
    sku: str
    on_hand: int
    locked: int  # reserved by paid orders not yet shipped
    available: int  # on_hand - locked; negative = oversold
    safety_stock: int
    last_sync_at: datetime  # when the WMS last pushed this warehouse's numbers


@dataclass(frozen=True, slots=True)
class StockMovement:
    movement_id: str
    at: datetime
    warehouse_id: str
    sku: str
    kind: str  # inbound | adjust | lock | release | ship | return
    qty: int  # signed change of on_hand (inbound/adjust/ship/return) or of locked (lock/release)
    channel: str | None
    platform_order_no: str | None


@dataclass(frozen=True, slots=True)
class WmsEvent:
    event_id: str
    at: datetime
    warehouse_id: str
    channel: str
    platform_order_no: str
    type: str  # allocate | allocate_failed | pick | pack | ship | return_received
    operator: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Shipment:
    channel: str
    platform_order_no: str
    warehouse_id: str
    carrier: str
    tracking_no: str
    shipped_at: datetime
    promised_at: datetime
    delivered_at: datetime | None
    status: str  # the last tracking status
    updated_at: datetime  # time of the last tracking event


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    event_id: str
    at: datetime
    carrier: str
    tracking_no: str
    channel: str
    platform_order_no: str
    # created | picked_up | pickup_failed | in_transit | out_for_delivery | delivered | rejected
    # | returning
    status: str
    location: str
    description: str


@dataclass(frozen=True, slots=True)
class CsTicket:
    ticket_id: str
    channel: str
    platform_order_no: str
    buyer_id: str
    opened_at: datetime
    updated_at: datetime
    topic: str
    text: str
    status: str  # open | pending | resolved
    priority: str  # low | normal | high


@dataclass(frozen=True, slots=True)
class BehaviourEvent:
    event_id: str
    at: datetime
    buyer_id: str
    ip: str | None
    device: str
    action: str  # view | cart_add | cart_remove | submit_order | pay
    channel: str
    sku: str | None
    platform_order_no: str | None


_TRACK_NO = {
    "SF": ("SF", 13), "ZTO": ("75", 12), "YTO": ("YT", 13), "YUNDA": ("43", 13),
    "STO": ("77", 13), "JD": ("JDVA0", 10), "EMS": ("11", 11),
}  # fmt: skip
_PICKUP_FAIL = ("揽收失败：快递员未按约定时间上门", "揽收失败：包裹超重，需重新称重打包")
_OPERATORS = ("张师傅", "李工", "王组长", "陈师傅", "刘师傅", "赵主管")


def build_merchant_systems_records(world: World) -> None:
    """Fill the world's merchant-side records from its orders."""
    end = world.end
    orders = [o for o in world.orders if o.channel != "pos"]  # POS sells from store stock
    wh_of = _warehouses_for(orders, {s.sku for s in world.skus if s.is_hot})
    seed = world.seed
    moves: list[tuple] = []  # (at, warehouse, sku, kind, qty, channel, order_no)
    wms: list[tuple] = []
    shipments: list[Shipment] = []
    tracks: list[tuple] = []
    tickets: list[tuple] = []
    behaviour: list[tuple] = []
    shipped_qty: dict[tuple[str, str], int] = {}
    oversold = set(world.oversold_skus)

    for order, (wh_idx, dist) in zip(orders, wh_of, strict=True):
        rng = random.Random(f"{seed}:{order.channel}:{order.platform_order_no}")
        wh = WAREHOUSES[wh_idx]
        key = (order.channel, order.platform_order_no)
        at: dict[str, datetime] = {}
        for e in order.events:
            if e.at <= end:  # a scenario may hold events later than the world's "now"
                at.setdefault(e.type, e.at)
        pay = order.paid_at if order.paid_at is not None and order.paid_at <= end else None
        ship = at.get("ship")
        items = [(i.sku, i.qty) for i in order.items]
        closed_before_ship = ship is None and ("cancel" in at or "refund" in at)
        # -- WMS and stock
        if pay is not None:
            alloc = pay + timedelta(minutes=rng.randint(2, 20))
            for sku, qty in items:
                moves.append((pay, wh.warehouse_id, sku, "lock", qty, *key))
            if "oversold_sku" in order.labels and ship is None:
                short = next((s for s, _ in items if s in oversold), items[0][0])
                if alloc <= end:
                    wms.append((alloc, wh.warehouse_id, *key, "allocate_failed", f"缺货: {short}"))
            elif alloc <= end and (ship is None or alloc < ship):
                wms.append((alloc, wh.warehouse_id, *key, "allocate", None))
            if closed_before_ship:
                release = at.get("cancel") or at.get("refund")
                for sku, qty in items:
                    moves.append((release, wh.warehouse_id, sku, "release", -qty, *key))
        if ship is not None:
            ready = (pay or order.created_at) + timedelta(minutes=25)
            pick = max(ready, ship - timedelta(minutes=rng.randint(60, 180)))
            pack = ship - timedelta(minutes=rng.randint(10, 24))
            wms.append((min(pick, pack), wh.warehouse_id, *key, "pick", None))
            wms.append((pack, wh.warehouse_id, *key, "pack", None))
            wms.append((ship, wh.warehouse_id, *key, "ship", None))
            for sku, qty in items:
                moves.append((ship, wh.warehouse_id, sku, "ship", -qty, *key))
                moves.append((ship, wh.warehouse_id, sku, "release", -qty, *key))
                shipped_qty[wh.warehouse_id, sku] = shipped_qty.get((wh.warehouse_id, sku), 0) + qty
            back = at.get("return")
            if back is not None and back + timedelta(hours=20) <= end:
                received = back + timedelta(hours=rng.randint(20, 40))
                if received <= end:
                    wms.append((received, wh.warehouse_id, *key, "return_received", None))
                    for sku, qty in items:
                        moves.append((received, wh.warehouse_id, sku, "return", qty, *key))
            shipment = _track(order, at, wh, dist, rng, end, tracks)
            shipments.append(shipment)
        else:
            shipment = None
        _tickets(order, at, shipment, rng, end, tickets)
        _behaviour(order, rng, end, behaviour, world.devices)

    tickets += _escalations(world)
    world.stock_movements, world.stock = _stock(world, moves, shipped_qty, end)
    world.wms_events = [
        WmsEvent(f"W{i:09d}", t, w, ch, no, typ, _OPERATORS[zlib.crc32(no.encode()) % 6], d)
        for i, (t, w, ch, no, typ, d) in enumerate(sorted(wms, key=_by_time), start=1)
    ]
    world.shipments = sorted(shipments, key=lambda s: (s.shipped_at, s.tracking_no))
    world.tracking_events = [
        TrackingEvent(f"T{i:09d}", *row) for i, row in enumerate(sorted(tracks, key=_by_time), 1)
    ]
    world.cs_tickets = [
        CsTicket(f"CS{row[3]:%Y%m%d}{i:06d}", *row)
        for i, row in enumerate(sorted(tickets, key=lambda r: (r[3], r[1])), start=1)
    ]
    world.behaviour_log = [
        BehaviourEvent(f"E{i:010d}", *row)
        for i, row in enumerate(sorted(behaviour, key=_by_time), start=1)
    ]
    world.risk_feedback = draw_risk_feedback(world)


def _by_time(row: tuple) -> tuple:
    return row[0], tuple("" if v is None else str(v) for v in row[1:])


def _warehouses_for(orders: list[Order], hot: set[str]) -> list[tuple[int, float]]:
    """The shipping warehouse of each order, as the generator decided it (same rule)."""
    idx = geo.district_index()
    ds = geo.districts()
    east = next(i for i, w in enumerate(WAREHOUSES) if w.warehouse_id == "WH-EAST")
    lat = np.zeros(len(orders))
    lon = np.zeros(len(orders))
    known = np.zeros(len(orders), bool)
    all_hot = np.zeros(len(orders), bool)
    for j, o in enumerate(orders):
        r = o.receiver
        d = idx.get((r.province, r.city, r.district)) if o.country == "CN" else None
        if d is not None:
            lat[j], lon[j], known[j] = ds[d].latitude, ds[d].longitude, True
        all_hot[j] = all(i.sku in hot for i in o.items)
    if not orders:
        return []
    wh, dist = assign_warehouses(lat, lon, all_hot)
    # abroad or unknown districts ship from the east hub (the export gateway); distance 1000 km
    wh = np.where(known, wh, east)
    dist = np.where(known, dist, 1000.0)
    return list(zip(wh.tolist(), dist.tolist(), strict=True))


def _carrier(order: Order, rng: random.Random) -> str:
    if order.channel == "jd":
        return "JD"
    if order.country != "CN" or order.receiver.province in geo.REMOTE_PROVINCES:
        return "EMS" if order.country == "CN" or rng.random() < 0.4 else "SF"
    return rng.choices(("SF", "ZTO", "YTO", "YUNDA", "STO"), (25, 25, 20, 15, 15))[0]


def _track(order, at, wh, dist, rng, end, out) -> Shipment:  # noqa: ANN001
    """Carrier events of one shipped order; appends rows to `out`, returns the shipment."""
    ship = at["ship"]
    carrier = _carrier(order, rng)
    prefix, digits = _TRACK_NO[carrier]
    tracking_no = prefix + str(rng.randrange(10 ** (digits - 1), 10**digits))
    remote = order.country == "CN" and order.receiver.province in geo.REMOTE_PROVINCES
    promised = ship + timedelta(hours=geo.sla_hours(dist, remote, order.country != "CN"))
    key = (order.channel, order.platform_order_no)
    rows = []

    def add(t: datetime, status: str, where: str, text: str) -> None:
        if t <= end:
            rows.append((t, carrier, tracking_no, *key, status, where, text))

    origin = f"{wh.city}{wh.district}"
    dest = f"{order.receiver.city}{order.receiver.district}"
    name = CARRIERS[carrier]
    add(ship, "created", origin, f"{name}已生成运单，等待揽收")
    pickup = ship + timedelta(minutes=rng.randint(30, 150))
    if "pickup_failure" in order.labels:
        add(ship + timedelta(hours=2), "pickup_failed", origin, rng.choice(_PICKUP_FAIL))
        pickup = ship + timedelta(hours=5, minutes=rng.randint(0, 50))
    add(pickup, "picked_up", origin, f"{name}快递员已揽收")
    arrival = at.get("deliver") or at.get("reject")
    # refunded on the way and never delivered: the merchant had the carrier stop it (拦截)
    stopped = arrival is None and "refund" in at and at["refund"] > ship
    hub_end = (arrival - timedelta(hours=4)) if arrival else (at["refund"] if stopped else end)
    hubs = [f"{wh.city}转运中心", f"{order.receiver.city}转运中心"]
    t = pickup + timedelta(hours=rng.randint(2, 5))
    for k, hub in enumerate(hubs):
        if t > hub_end:
            break
        verb = "已发出" if k == 0 else "已到达"
        add(t, "in_transit", hub, f"快件{verb}【{hub}】")
        t += timedelta(hours=rng.randint(8, 20))
    if arrival is not None:
        add(arrival - timedelta(hours=rng.randint(1, 3)), "out_for_delivery", dest,
            f"快件正在派送中，派送员电话 1{rng.randint(3000000000, 9999999999)}")  # fmt: skip
        if "deliver" in at:
            add(at["deliver"], "delivered", dest, "快件已签收，签收人：本人")
        else:
            add(at["reject"], "rejected", dest, "收件人拒收，快件将退回")
            add(at["reject"] + timedelta(hours=1), "returning", dest, "快件退回中")
    elif stopped:
        add(at["refund"] + timedelta(hours=rng.randint(2, 5)), "returning", hubs[0],
            "快件已拦截，正在退回寄件人")  # fmt: skip
    out.extend(rows)
    last = max(rows, key=lambda r: r[0])
    return Shipment(
        *key, wh.warehouse_id, carrier, tracking_no, ship, promised, at.get("deliver"),
        last[5], last[0],
    )  # fmt: skip


def _tickets(order, at, shipment, rng, end, out) -> None:  # noqa: ANN001
    key = (order.channel, order.platform_order_no)
    no = order.platform_order_no
    title = order.items[0].title or order.items[0].sku
    labels = set(order.labels)
    cands: list[tuple[float, datetime | None, str, str, str]] = []
    if "stuck_order" in labels and order.paid_at:
        cands.append((0.7, order.paid_at + timedelta(hours=rng.randint(49, 60)), "催发货",
                      f"订单{no}付款两天了还没发货，到底什么时候能发？", "high"))  # fmt: skip
    if "oversold_sku" in labels and order.paid_at:
        cands.append((0.5, order.paid_at + timedelta(hours=rng.randint(6, 30)), "缺货咨询",
                      f"我买的{title}下单时显示有货，为什么一直不发货？", "normal"))  # fmt: skip
    if "delivery_timeout" in labels and shipment is not None:
        cands.append((0.6, shipment.promised_at + timedelta(hours=rng.randint(2, 12)), "物流投诉",
                      "快递已经超过承诺时间还没送到，物流信息好几天没更新了", "high"))  # fmt: skip
    if "pickup_failure" in labels and shipment is not None:
        cands.append((0.2, shipment.shipped_at + timedelta(hours=3), "物流咨询",
                      "显示已发货但物流一直没有揽收信息，是不是没发出去？", "normal"))  # fmt: skip
    if "return" in at:
        cands.append((0.8, at["return"] - timedelta(hours=2), "退货退款",
                      f"收到的{title}有质量问题，申请退货退款", "normal"))  # fmt: skip
    if "reject" in at:
        cands.append((0.5, at["reject"] + timedelta(hours=2), "拒收退款",
                      "包裹破损已经拒收了，请尽快退款", "normal"))  # fmt: skip
    if "refund" in at and "ship" not in at:
        cands.append((0.4, at["refund"] - timedelta(minutes=30), "取消订单",
                      "拍错了规格，麻烦取消订单并退款", "low"))  # fmt: skip
    cands.append((0.02, order.created_at + timedelta(hours=rng.randint(1, 30)), "发票",
                  "请帮忙开具电子发票，抬头为个人", "low"))  # fmt: skip
    if "ship" in at and "deliver" not in at:
        cands.append((0.03, at["ship"] + timedelta(hours=rng.randint(12, 40)), "物流咨询",
                      "请问我的快递什么时候能到？", "low"))  # fmt: skip
    for prob, opened, topic, text, priority in cands:
        if opened is None or opened > end or rng.random() >= prob:
            continue
        age = end - opened
        if age > timedelta(hours=24):
            status, updated = "resolved", opened + timedelta(hours=rng.randint(1, 20))
        elif age > timedelta(hours=2):
            status, updated = "pending", opened + timedelta(minutes=rng.randint(10, 100))
        else:
            status, updated = "open", opened
        out.append((*key, order.buyer_id, opened, min(updated, end), topic, text, status, priority))


def _escalations(world: World) -> list[tuple]:
    """The tickets of each `cs_escalation` incident: three asks about one order between the
    incident's start and end, complaint words in each, the last one still open."""
    rows = []
    orders = {(o.channel, o.platform_order_no): o for o in world.orders}
    for incident in world.incidents:
        order = orders.get((incident.get("channel"), incident.get("platform_order_no")))
        if incident["kind"] != "cs_escalation" or order is None:
            continue
        first = datetime.fromisoformat(incident["start"])
        last = datetime.fromisoformat(incident["end"])
        asks = (first, first + (last - first) * 0.55, last)
        states = (("resolved", timedelta(hours=3)), ("pending", timedelta(hours=1)),
                  ("open", timedelta(0)))  # fmt: skip
        for at, (topic, text), (status, later) in zip(
            asks, ESCALATION_TICKETS, states, strict=True
        ):
            rows.append((order.channel, order.platform_order_no, order.buyer_id, at,
                         min(at + later, world.end), topic,
                         text.format(no=order.platform_order_no), status, "high"))  # fmt: skip
    return rows


def _behaviour(order, rng, end, out, devices=None) -> None:  # noqa: ANN001
    # a shared handset (fraud ring, family tablet) shows its fingerprint, others their model
    device = (devices or {}).get(order.buyer_id) or people.DEVICES[
        zlib.crc32(order.buyer_id.encode()) % len(people.DEVICES)
    ]
    base = (order.buyer_id, order.buyer_ip, device)
    created = order.created_at
    for item in order.items:
        out.append((created - timedelta(seconds=rng.randint(300, 1800)), *base, "view",
                    order.channel, item.sku, None))  # fmt: skip
        out.append((created - timedelta(seconds=rng.randint(30, 290)), *base, "cart_add",
                    order.channel, item.sku, None))  # fmt: skip
    if rng.random() < 0.1:
        out.append((created - timedelta(seconds=rng.randint(10, 25)), *base, "cart_remove",
                    order.channel, order.items[0].sku, None))  # fmt: skip
    if "cart_churn" in order.labels:  # a bot toggling the cart: 24-30 actions in < 1 minute
        t0 = created - timedelta(minutes=5)
        sku = order.items[0].sku
        for k in range(rng.randint(24, 30)):
            action = "cart_add" if k % 2 == 0 else "cart_remove"
            out.append((t0 + timedelta(seconds=2 * k), *base, action, order.channel, sku, None))
    out.append((created, *base, "submit_order", order.channel, None, order.platform_order_no))
    if order.paid_at is not None and order.paid_at <= end:
        out.append((order.paid_at, *base, "pay", order.channel, None, order.platform_order_no))


def _stock(world: World, moves: list[tuple], shipped: dict, end: datetime):  # noqa: ANN202
    """Opening stock per warehouse and SKU (enough for what shipped and what is reserved, plus a
    buffer; an oversold SKU had only what shipped), stocktake adjustments, and the levels each
    warehouse last synced."""
    rng = random.Random(f"{world.seed}:stock")
    reserved: dict[tuple[str, str], int] = {}
    for m in moves:
        if m[3] in ("lock", "release"):
            reserved[m[1], m[2]] = reserved.get((m[1], m[2]), 0) + m[4]
    oversold = set(world.oversold_skus)
    extra = set(world.extra_skus)
    stale = {i["warehouse"] for i in world.incidents if i["kind"] == "stock_sync_stale"}
    opening = world.start - timedelta(hours=6)
    rows = []
    sync = {}
    for w in WAREHOUSES:
        minutes = STALE_SYNC_MINUTES if w.warehouse_id in stale else rng.randint(1, 4)
        sync[w.warehouse_id] = end - timedelta(minutes=minutes)
        for s in world.skus:
            if w.is_front and not (s.is_hot or s.sku in extra):
                continue
            out = shipped.get((w.warehouse_id, s.sku), 0)
            if s.sku in oversold:
                buffer = 0  # sold out: the paid orders still waiting have nothing to ship
            elif rng.random() < 0.04 and not world.calm:
                buffer = rng.randint(0, 8)  # running low: below the safety stock
            else:
                buffer = rng.randint(5, 60) if w.is_front else rng.randint(20, 300)
            if s.sku not in oversold:
                buffer += reserved.get((w.warehouse_id, s.sku), 0)
            rows.append((opening, w.warehouse_id, s.sku, "inbound", out + buffer, None, None))
            if buffer > 3 and rng.random() < 0.02:  # a stocktake finds a few units more or less
                when = world.start + (end - world.start) * rng.random()
                rows.append((when, w.warehouse_id, s.sku, "adjust", rng.choice((-2, -1, 1, 3)),
                             None, None))  # fmt: skip
    rows.extend(moves)
    rows.sort(key=_by_time)
    movements = [StockMovement(f"M{i:09d}", *r) for i, r in enumerate(rows, start=1)]
    on_hand: dict[tuple[str, str], int] = {}
    locked: dict[tuple[str, str], int] = {}
    for m in movements:
        if m.at > sync[m.warehouse_id]:
            continue  # not yet synced from the WMS
        k = (m.warehouse_id, m.sku)
        if m.kind in ("lock", "release"):
            locked[k] = locked.get(k, 0) + m.qty
        else:
            on_hand[k] = on_hand.get(k, 0) + m.qty
    levels = []
    for k in sorted(on_hand):
        oh, lk = on_hand[k], locked.get(k, 0)
        levels.append(StockLevel(*k, oh, lk, oh - lk, SAFETY_STOCK, sync[k[0]]))
    return movements, levels
