"""One channel's orders, indexed so a gateway can answer "which orders were last modified in
[start, end], as seen at `now`" fast enough for a million orders.

An order has versions: its creation, its payment and each event, each a point in time (whole
seconds: every platform shows at most second resolution, and a window edge must compare
equal to what the client sees). At `now` an order is visible if its first version is <= now,
and its modified time is its latest version <= now. The index holds one entry per version
(time, next version time, order index) in arrays sorted by time: a window query is two bisects
and a vectorised filter "next version > now", never a scan of rendered orders.

Orders arrive in batches (the world, then live orders); each batch is one segment. A page-shift
fault adds a version to an order after the fact (`bump`). With `compact=True` (million-order
worlds) each order is kept as its JSON bytes (~0.8 kB instead of ~6 kB of objects) and rebuilt
on demand, with a small cache for the list-then-detail pattern.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from sandbox.model import Order

NEVER = np.iinfo(np.int64).max


def epoch_s(moment: datetime) -> int:
    """Whole seconds since the epoch (floor), the resolution of every index entry."""
    return int(moment.timestamp() // 1)


def from_epoch_s(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Late(Protocol):
    """A late status update (`sandbox.world.LateUpdate`): the platform shows the event
    `event_type` that happened at `happened_at` only from `visible_at`."""

    event_type: str
    happened_at: datetime
    visible_at: datetime


def effective_time(at: datetime, kind: str, late: Late | None) -> datetime:
    """When the platform shows an event of `kind` at `at` (later for a late update)."""
    if late is not None and kind == late.event_type and at == late.happened_at:
        return late.visible_at
    return at


def version_times(order: Order, late: Late | None = None) -> list[int]:
    """The whole-second times at which `order` changed as the platform shows it, ascending."""
    created = epoch_s(order.created_at)
    times = {created}
    if order.paid_at is not None:
        times.add(max(created, epoch_s(effective_time(order.paid_at, "pay", late))))
    for event in order.events:
        times.add(max(created, epoch_s(effective_time(event.at, event.type, late))))
    return sorted(times)


@dataclass
class _Segment:
    t: np.ndarray  # version time, ascending
    nxt: np.ndarray  # the order's next version time (NEVER for its last)
    idx: np.ndarray  # order index


class OrderStore:
    """Orders of one channel with a version index; thread-safe."""

    def __init__(
        self,
        orders: Iterable[Order] = (),
        late: Mapping[str, Late] | None = None,
        *,
        compact: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        self.compact = compact
        self._orders: list[Order | bytes] = []
        self._recent: OrderedDict[int, Order] = OrderedDict()
        self._by_no: dict[str, int] = {}
        self.late: dict[str, Late] = {}
        self._versions: list[list[int]] = []
        self._segments: list[_Segment] = []
        self._created_segments: list[tuple[np.ndarray, np.ndarray]] = []  # (created, idx)
        self.created = np.empty(0, np.int64)  # created time per order index
        self.generation = 0
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.add(orders, late)

    def __len__(self) -> int:
        return len(self._orders)

    def order(self, i: int) -> Order:
        """Order `i` (rebuilt from its bytes in compact mode)."""
        item = self._orders[i]
        if not isinstance(item, bytes):
            return item
        with self._lock:
            hit = self._recent.get(i)
            if hit is not None:
                self._recent.move_to_end(i)
                return hit
            order = Order.model_validate_json(item)
            self._recent[i] = order
            if len(self._recent) > 4096:
                self._recent.popitem(last=False)
            return order

    @property
    def orders(self) -> list[Order]:
        """Every order (materialised: for small stores, tests and fixtures)."""
        return [self.order(i) for i in range(len(self._orders))]

    # -- building ---------------------------------------------------------------------------
    def add(self, orders: Iterable[Order], late: Mapping[str, Late] | None = None) -> list[int]:
        """Add a batch of orders (new order numbers only); returns their indexes. `late` maps
        an order number to its late status update."""
        late = late or {}
        with self._lock:
            added: list[int] = []
            ts: list[int] = []
            nxts: list[int] = []
            idxs: list[int] = []
            for order in orders:
                if order.platform_order_no in self._by_no:
                    raise ValueError(
                        f"{order.channel} order {order.platform_order_no} is already published"
                    )
                i = len(self._orders)
                self._orders.append(_pack(order) if self.compact else order)
                self._by_no[order.platform_order_no] = i
                update = late.get(order.platform_order_no)
                if update is not None:
                    self.late[order.platform_order_no] = update
                versions = version_times(order, update)
                self._versions.append(versions)
                ts.extend(versions)
                nxts.extend([*versions[1:], NEVER])
                idxs.extend([i] * len(versions))
                added.append(i)
            if added:
                self._add_segment(
                    np.asarray(ts, np.int64), np.asarray(nxts, np.int64), np.asarray(idxs, np.int64)
                )
                idx = np.asarray(added, np.int64)
                created = np.asarray([self._versions[i][0] for i in added], np.int64)
                self.created = np.concatenate([self.created, created])
                order_ = np.lexsort((idx, created))
                self._created_segments.append((created[order_], idx[order_]))
            return added

    def _add_segment(self, t: np.ndarray, nxt: np.ndarray, idx: np.ndarray) -> None:
        order_ = np.lexsort((idx, t))
        self._segments.append(_Segment(t[order_], nxt[order_], idx[order_]))
        if len(self._segments) > 16:
            self._compact()
        self._changed()

    def _compact(self) -> None:
        t = np.concatenate([s.t for s in self._segments])
        nxt = np.concatenate([s.nxt for s in self._segments])
        idx = np.concatenate([s.idx for s in self._segments])
        order_ = np.lexsort((idx, t))
        self._segments = [_Segment(t[order_], nxt[order_], idx[order_])]

    def _changed(self) -> None:
        self.generation += 1
        self._cache.clear()

    def bump(self, i: int, when_s: int) -> bool:
        """Give order `i` a new version at `when_s` (a modification without a status change).
        Returns False when the order already has a version at that second."""
        with self._lock:
            versions = self._versions[i]
            if when_s in versions or when_s < versions[0]:
                return False
            pos = bisect_right(versions, when_s)
            prev_t = versions[pos - 1]
            next_t = versions[pos] if pos < len(versions) else NEVER
            for seg in self._segments:
                hit = np.nonzero((seg.idx == i) & (seg.t == prev_t))[0]
                if hit.size:
                    seg.nxt[hit[0]] = when_s
                    break
            insort(versions, when_s)
            self._add_segment(
                np.asarray([when_s], np.int64),
                np.asarray([next_t], np.int64),
                np.asarray([i], np.int64),
            )
            return True

    # -- reading ----------------------------------------------------------------------------
    def index_of(self, platform_order_no: str) -> int | None:
        return self._by_no.get(platform_order_no)

    def modified_s(self, i: int, now_s: int) -> int | None:
        """Order `i`'s modified time as seen at `now_s` (None: not created yet)."""
        versions = self._versions[i]
        pos = bisect_right(versions, now_s)
        return versions[pos - 1] if pos else None

    def created_s(self, i: int) -> int:
        return self._versions[i][0]

    def versions_s(self, i: int) -> list[int]:
        return list(self._versions[i])

    def modified_window(
        self, start_s: int, end_s: int, now_s: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(order indexes, modified times) of the orders whose modified time at `now_s` lies in
        [start_s, end_s], ascending by (modified time, order index)."""
        with self._lock:
            seen = sum(int(np.searchsorted(s.t, now_s, "right")) for s in self._segments)
            key = ("m", start_s, end_s, seen, self.generation)
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            upper = min(end_s, now_s)
            parts_i, parts_t = [], []
            for seg in self._segments:
                lo = int(np.searchsorted(seg.t, start_s, "left"))
                hi = int(np.searchsorted(seg.t, upper, "right"))
                if hi <= lo:
                    continue
                live = seg.nxt[lo:hi] > now_s
                parts_i.append(seg.idx[lo:hi][live])
                parts_t.append(seg.t[lo:hi][live])
            result = _merge(parts_i, parts_t)
            self._remember(key, result)
            return result

    def created_window(self, start_s: int, end_s: int, now_s: int) -> tuple[np.ndarray, np.ndarray]:
        """(order indexes, created times) of visible orders created in [start_s, end_s]."""
        with self._lock:
            upper = min(end_s, now_s)
            key = ("c", start_s, upper, self.generation)
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            parts_i, parts_t = [], []
            for created, idx in self._created_segments:
                lo = int(np.searchsorted(created, start_s, "left"))
                hi = int(np.searchsorted(created, upper, "right"))
                if hi > lo:
                    parts_i.append(idx[lo:hi])
                    parts_t.append(created[lo:hi])
            result = _merge(parts_i, parts_t)
            self._remember(key, result)
            return result

    def changed_between(self, after_s: int, upto_s: int) -> list[int]:
        """Order indexes with a version in (after_s, upto_s], in time order (push feed)."""
        with self._lock:
            parts_i, parts_t = [], []
            for seg in self._segments:
                lo = int(np.searchsorted(seg.t, after_s, "right"))
                hi = int(np.searchsorted(seg.t, upto_s, "right"))
                if hi > lo:
                    parts_i.append(seg.idx[lo:hi])
                    parts_t.append(seg.t[lo:hi])
            idx, _ = _merge(parts_i, parts_t)
            return idx.tolist()

    def _remember(self, key: tuple, result: tuple[np.ndarray, np.ndarray]) -> None:
        self._cache[key] = result
        while len(self._cache) > 32:
            self._cache.popitem(last=False)


def _merge(parts_i: list[np.ndarray], parts_t: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not parts_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if len(parts_i) == 1:
        return parts_i[0], parts_t[0]
    idx = np.concatenate(parts_i)
    t = np.concatenate(parts_t)
    order_ = np.lexsort((idx, t))
    return idx[order_], t[order_]


def _pack(order: Order) -> bytes:
    return json.dumps(
        order.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    ).encode()
