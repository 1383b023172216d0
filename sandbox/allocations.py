"""The WMS's allocation inbox: OrderPulse's routing decisions arrive here (`POST
/wms/allocations`), and the sandbox plays each accepted order's future with its delivery model
(`sandbox/outcomes.py`) on the sandbox's clock.

`AllocationBook(world, seed=..., clock=..., time_scale=...)` holds the accepted allocations and
the records their futures produce: WMS events (allocate, pick, pack, ship), a carrier shipment
(one version per tracking step) and tracking events (created, pickup_failed, picked_up,
in_transit ×2, delivered). Every record carries the time it happens; the merchant-systems API
shows a record only once the clock has reached it (a shipment shows its latest version), so the
normal ingest picks the future up as it happens.

Time: the model runs in world time from the moment the allocation is received (`now`); the
sandbox then compresses it by `time_scale` (the live mode's LIVE_TIME_SCALE: a model hour is a
live minute): a record at model time t appears at now + (t − now) / time_scale.

Rules of the inbox, per allocation: an unknown order, warehouse or carrier is rejected with
that reason; an order the world already shipped, or whose played future has shipped, is
`already_shipped`; the same allocation again is accepted and changes nothing (idempotent); a
changed warehouse or carrier before the order ships replaces the allocation (records already
visible stay, the old future is dropped and the new one played from now).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from sandbox import geo
from sandbox.catalog import CARRIERS, WAREHOUSES
from sandbox.merchant_systems_records import _TRACK_NO, Shipment, TrackingEvent, WmsEvent
from sandbox.model import Order
from sandbox.outcomes import CONGESTED_PROVINCES, Outcomes, order_keys, simulate_outcomes

if TYPE_CHECKING:
    from sandbox.world import World

MAX_BATCH = 1000
INF = float("inf")


class AllocationIn(BaseModel):
    """One allocation as OrderPulse sends it."""

    model_config = ConfigDict(extra="ignore")
    channel: str
    platform_order_no: str
    warehouse_id: str
    carrier: str
    decided_at: datetime
    promised_delivery_at: datetime | None = None

    @field_validator("decided_at", "promised_delivery_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-20T10:00:00+08:00")
        return value


@dataclass
class _Played:
    """One accepted allocation and the records of its future."""

    allocation: AllocationIn
    received_at: datetime
    shipped_at: datetime
    delivered_at: datetime
    freight_cost: Decimal
    records: list[tuple[str, Any, float, float]]  # (resource, record, visible from, until)


class AllocationBook:
    """Accepted allocations and their played futures (thread-safe)."""

    def __init__(
        self,
        world: World,
        *,
        seed: int | None = None,
        clock: Callable[[], datetime] | None = None,
        time_scale: float = 1.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0 (got {time_scale})")
        self.seed = world.seed if seed is None else seed
        # a calm world's hubs hold no more parcels in one province than anywhere else
        self.congested = () if getattr(world, "calm", False) else CONGESTED_PROVINCES
        self.clock = clock or (lambda: datetime.now(UTC))
        self.time_scale = float(time_scale)
        self._orders: dict[tuple[str, str], Order] = {}
        self._shipped: set[tuple[str, str]] = {
            (s.channel, s.platform_order_no) for s in world.shipments
        }
        self._played: dict[tuple[str, str], _Played] = {}
        self._history: list[tuple[str, Any, float, float]] = []  # what replaced ones left
        self._sku_kg = {s.sku: float(s.weight_kg) for s in world.skus}
        self._serial = 0
        self._lock = threading.RLock()
        self.version = 0  # bumped on every change (the API re-indexes)
        self.add_orders(world.orders)

    # -- what the book knows -----------------------------------------------------------------
    def add_orders(self, orders: Iterable[Order]) -> None:
        """Orders the WMS may receive allocations for (the world's, and live ones)."""
        with self._lock:
            for o in orders:
                self._orders[(o.channel, o.platform_order_no)] = o

    def observe(self, world: World) -> None:
        """A new or changed world (scenario merge, live tick): its orders and shipments."""
        with self._lock:
            self.add_orders(world.orders)
            self._shipped |= {(s.channel, s.platform_order_no) for s in world.shipments}

    def records(self) -> dict[str, list[tuple[Any, float, float]]]:
        """resource name -> [(record, visible from, visible until)] of every played future."""
        out: dict[str, list[tuple[Any, float, float]]] = {
            "wms_events": [],
            "shipments": [],
            "tracks": [],
        }
        with self._lock:
            rows = [r for p in self._played.values() for r in p.records] + self._history
            for name, record, since, until in rows:
                out[name].append((record, since, until))
        return out

    def deliveries(self) -> list[dict]:
        """The truth of the played allocations (`Sandbox.truth()["deliveries"]`)."""
        with self._lock:
            rows = [
                {
                    "channel": a.allocation.channel,
                    "platform_order_no": a.allocation.platform_order_no,
                    "warehouse_id": a.allocation.warehouse_id,
                    "carrier": a.allocation.carrier,
                    "delivered_at": a.delivered_at.isoformat(),
                    # the same moment on the model's clock (uncompressed by time_scale), the
                    # clock OrderPulse's promised_delivery_at counts on
                    "delivered_at_model": self._model(a.delivered_at, a.received_at).isoformat(),
                    "freight_cost": str(a.freight_cost),
                }
                for a in self._played.values()
            ]
        return sorted(rows, key=lambda r: (r["channel"], r["platform_order_no"]))

    # -- receiving -------------------------------------------------------------------------
    def submit(self, items: list[Any]) -> dict:
        """Apply a batch of allocations: {"accepted": n, "rejected": [{platform_order_no,
        reason}], "replaced": n, "unchanged": n}."""
        now = self.clock()
        rejected: list[dict] = []
        fresh: dict[tuple[str, str], AllocationIn] = {}
        unchanged = replaced = 0
        known_wh = {w.warehouse_id for w in WAREHOUSES}
        with self._lock:
            for raw in items:  # the API's edge: validation per item, the model runs vectorised
                try:
                    a = AllocationIn.model_validate(raw)
                except ValidationError as exc:
                    no = raw.get("platform_order_no") if isinstance(raw, dict) else None
                    err = exc.errors()[0]
                    where = ".".join(str(x) for x in err["loc"])
                    rejected.append(
                        {"platform_order_no": no, "reason": f"invalid: {where}: {err['msg']}"}
                    )
                    continue
                key = (a.channel, a.platform_order_no)
                reason = None
                if key not in self._orders:
                    reason = "unknown_order"
                elif a.warehouse_id not in known_wh:
                    reason = "unknown_warehouse"
                elif a.carrier not in CARRIERS:
                    reason = "unknown_carrier"
                elif self._already_shipped(key, now):
                    reason = "already_shipped"
                if reason:
                    rejected.append({"platform_order_no": a.platform_order_no, "reason": reason})
                    continue
                old = self._played.get(key)
                if old is not None and (old.allocation.warehouse_id, old.allocation.carrier) == (
                    a.warehouse_id,
                    a.carrier,
                ):
                    unchanged += 1
                    fresh.pop(key, None)
                    continue
                if key in fresh:  # the last of a batch's duplicates wins
                    rejected.append(
                        {"platform_order_no": a.platform_order_no, "reason": "superseded_in_batch"}
                    )
                fresh[key] = a
            for key in fresh:
                if key in self._played:
                    replaced += 1
                    self._drop_future(key, now)
            if fresh:
                self._play(list(fresh.values()), now)
                self.version += 1
        superseded = sum(1 for r in rejected if r["reason"] == "superseded_in_batch")
        return {
            "accepted": len(fresh) + unchanged,
            "rejected": rejected,
            "replaced": replaced,
            "unchanged": unchanged,
        } | ({"superseded": superseded} if superseded else {})

    def _already_shipped(self, key: tuple[str, str], now: datetime) -> bool:
        if key in self._shipped:
            return True
        order = self._orders[key]
        if any(e.type == "ship" and e.at <= now for e in order.events):
            return True
        played = self._played.get(key)
        return played is not None and played.shipped_at <= now

    def _drop_future(self, key: tuple[str, str], now: datetime) -> None:
        """Keep what already happened of a replaced allocation, forget the rest."""
        old = self._played.pop(key)
        t = now.timestamp()
        self._history += [r for r in old.records if r[0] != "shipments" and r[2] <= t]

    # -- playing the future --------------------------------------------------------------------
    def _play(self, batch: list[AllocationIn], now: datetime) -> None:
        orders = [self._orders[(a.channel, a.platform_order_no)] for a in batch]
        idx, ds = geo.district_index(), geo.districts()
        lat = np.full(len(batch), np.nan)
        lon = np.full(len(batch), np.nan)
        for j, o in enumerate(orders):
            r = o.receiver
            d = idx.get((r.province, r.city, r.district)) if o.country == "CN" else None
            if d is not None:
                lat[j], lon[j] = ds[d].latitude, ds[d].longitude
        kg = np.array([sum(self._sku_kg.get(i.sku, 0.5) * i.qty for i in o.items) for o in orders])
        now_s = int(now.timestamp())
        backlog: dict[str, int] = {}
        for p in self._played.values():  # allocations not yet picked wait in front
            if p.shipped_at > now and p.allocation.warehouse_id:
                backlog[p.allocation.warehouse_id] = backlog.get(p.allocation.warehouse_id, 0) + 1
        paid = np.array(
            [int((o.paid_at or o.created_at).timestamp()) for o in orders], dtype=np.int64
        )
        out = simulate_outcomes(
            np.array([a.warehouse_id for a in batch], dtype=object),
            lat,
            lon,
            np.array([o.receiver.province for o in orders], dtype=object),
            np.array([a.carrier for a in batch], dtype=object),
            np.minimum(paid, now_s),
            seed=self.seed,
            weight_kg=kg,
            keys=order_keys(
                np.array([a.channel for a in batch], dtype=object),
                np.array([a.platform_order_no for a in batch], dtype=object),
            ),
            allocated_at=np.full(len(batch), now_s, dtype=np.int64),
            backlog=backlog,
            congested=self.congested,
        )
        for j, (a, o) in enumerate(zip(batch, orders, strict=True)):
            self._played[(a.channel, a.platform_order_no)] = self._records(a, o, out, j, now)

    def _model(self, live: datetime, received: datetime) -> datetime:
        """The model time of a live moment of a future played from `received` (`_live`'s
        inverse, to the second)."""
        return received + timedelta(
            seconds=round((live - received).total_seconds() * self.time_scale)
        )

    def _live(self, t_model: int, now: datetime) -> datetime:
        return now + timedelta(seconds=(t_model - now.timestamp()) / self.time_scale)

    def _records(self, a: AllocationIn, o: Order, out: Outcomes, j: int, now: datetime) -> _Played:
        self._serial += 1
        serial = self._serial
        at = {
            name: self._live(int(getattr(out, name)[j]), now)
            for name in (
                "allocated_at", "picked_at", "packed_at", "shipped_at", "picked_up_at",
                "departed_at", "arrived_at", "delivered_at",
            )
        }  # fmt: skip
        failed = int(out.pickup_failed_at[j])
        if failed >= 0:
            at["pickup_failed_at"] = self._live(failed, now)
        wh = next(w for w in WAREHOUSES if w.warehouse_id == a.warehouse_id)
        key = (a.channel, a.platform_order_no)
        records: list[tuple[str, Any, float, float]] = []
        operator = "OrderPulse分仓"
        for k, (kind, when) in enumerate(
            (("allocate", at["allocated_at"]), ("pick", at["picked_at"]),
             ("pack", at["packed_at"]), ("ship", at["shipped_at"]))
        ):  # fmt: skip
            detail = (
                f"{a.carrier}; decided {a.decided_at.isoformat()}" if kind == "allocate" else None
            )
            event = WmsEvent(
                f"WA{serial:08d}{k}", when, a.warehouse_id, *key, kind, operator, detail
            )
            records.append(("wms_events", event, when.timestamp(), INF))
        prefix, digits = _TRACK_NO[a.carrier]
        number = int(order_keys(np.array([a.channel]), np.array([a.platform_order_no]))[0])
        tracking_no = prefix + str(10 ** (digits - 1) + number % (9 * 10 ** (digits - 1)))
        origin = f"{wh.city}{wh.district}"
        dest = f"{o.receiver.city}{o.receiver.district}"
        name = CARRIERS[a.carrier]
        steps = [("created", at["shipped_at"], origin, f"{name}已生成运单，等待揽收")]
        if "pickup_failed_at" in at:
            steps.append(
                (
                    "pickup_failed",
                    at["pickup_failed_at"],
                    origin,
                    "揽收失败：快递员未按约定时间上门",
                )
            )
        steps += [
            ("picked_up", at["picked_up_at"], origin, f"{name}快递员已揽收"),
            ("in_transit", at["departed_at"], f"{wh.city}转运中心",
             f"快件已发出【{wh.city}转运中心】"),
            ("in_transit", at["arrived_at"], f"{o.receiver.city}转运中心",
             f"快件已到达【{o.receiver.city}转运中心】"),
            ("delivered", at["delivered_at"], dest, "快件已签收，签收人：本人"),
        ]  # fmt: skip
        promised = a.promised_delivery_at or at["delivered_at"]
        for k, (status, when, where, text) in enumerate(steps):
            track = TrackingEvent(
                f"TA{serial:08d}{k}", when, a.carrier, tracking_no, *key, status, where, text
            )
            records.append(("tracks", track, when.timestamp(), INF))
            until = steps[k + 1][1].timestamp() if k + 1 < len(steps) else INF
            shipment = Shipment(
                *key, a.warehouse_id, a.carrier, tracking_no, at["shipped_at"], promised,
                at["delivered_at"] if status == "delivered" else None, status, when,
            )  # fmt: skip
            records.append(("shipments", shipment, when.timestamp(), until))
        return _Played(
            a,
            now,
            at["shipped_at"],
            at["delivered_at"],
            Decimal(str(float(out.freight_cost[j]))).quantize(Decimal("0.01")),
            records,
        )
