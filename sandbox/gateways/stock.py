"""The stock each marketplace displays per SKU, what its stock API serves and what the
merchant's freeze and pause-sale calls change. Each platform module renders it in its own
protocol; this module knows no platform.

Per SKU a platform holds `total` (the units it may sell: the WMS on hand over every warehouse,
plus the drift the sandbox controls), `withheld` (units frozen for paid, unshipped orders:
at first the WMS's own locks, then whatever the merchant last pushed) and `paused` (sale
stopped: delisted, off shelf). It displays `sellable = max(total - withheld, 0)`.

Drift (`plan_stock_drift`): in a world with incidents, a few SKUs on each platform show one or
two units more or less than the WMS (within the seeds' ±3 tolerance), and the planted
`stock_diff` incidents (worlds of `incidents.MIN_ORDERS` orders or more, as for every kind)
make one SKU on one platform differ by 5 to 9 units. A calm world has no drift. The
incidents are listed in the truth beside the world's own (`sandbox.server`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

STOCK_DIFF = "stock_diff"  # the incident kind
STOCK_DIFF_SKUS = 2  # planted incidents per world
STOCK_DIFF_UNITS = (5, 9)  # |drift| of a planted incident, inclusive
NOISE_SHARE = 0.05  # of (platform, SKU) pairs off by 1 or 2 units
NOISE_UNITS = (-2, -1, 1, 2)
MIN_SELLABLE = 20  # a planted SKU sells at least this many: the drift is never clipped at 0


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str
    sellable: int
    withheld: int
    paused: bool


class UnknownSku(KeyError):
    """A freeze or sale call named a SKU the platform does not list."""


class PlatformStock:
    """One platform's stock per SKU; thread-safe, SKUs served in ascending order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total: dict[str, int] = {}
        self._withheld: dict[str, int] = {}
        self._paused: set[str] = set()
        self._order: list[str] = []

    def load(
        self,
        on_hand: Mapping[str, int],
        locked: Mapping[str, int] | None = None,
        drift: Mapping[str, int] | None = None,
    ) -> None:
        """Start from the WMS: total = on hand + drift, withheld = the WMS's locks."""
        locked, drift = locked or {}, drift or {}
        with self._lock:
            self._total = {s: max(int(q) + int(drift.get(s, 0)), 0) for s, q in on_hand.items()}
            self._withheld = {s: max(int(locked.get(s, 0)), 0) for s in on_hand}
            self._paused = set()
            self._order = sorted(self._total)

    def __len__(self) -> int:
        return len(self._order)

    def _row(self, sku: str) -> StockRow:
        withheld = self._withheld.get(sku, 0)
        sellable = max(self._total[sku] - withheld, 0)
        return StockRow(sku, sellable, withheld, sku in self._paused)

    def page(self, start: int, size: int) -> tuple[list[StockRow], int]:
        """Rows [start, start + size) in SKU order, and the number of SKUs."""
        with self._lock:
            skus = self._order[max(start, 0) : max(start, 0) + max(size, 0)]
            return [self._row(s) for s in skus], len(self._order)

    def rows(self, skus: Iterable[str]) -> list[StockRow]:
        """These SKUs (unknown ones skipped)."""
        with self._lock:
            return [self._row(s) for s in skus if s in self._total]

    def _check(self, skus: Iterable[str]) -> None:
        unknown = [s for s in skus if s not in self._total]
        if unknown:
            raise UnknownSku(unknown[0])

    def set_withheld(self, items: Mapping[str, int]) -> list[StockRow]:
        """Freeze: the units withheld per SKU become these (absolute, so a repeat is harmless).
        All or nothing: an unknown SKU changes none."""
        with self._lock:
            self._check(items)
            for sku, qty in items.items():
                self._withheld[sku] = max(int(qty), 0)
            return [self._row(s) for s in items]

    def set_paused(self, items: Mapping[str, bool]) -> list[StockRow]:
        """Pause (True) or lift (False) the sale of SKUs; all or nothing."""
        with self._lock:
            self._check(items)
            for sku, paused in items.items():
                if paused:
                    self._paused.add(sku)
                else:
                    self._paused.discard(sku)
            return [self._row(s) for s in items]


def drift_rng(seed: int) -> np.random.Generator:
    # its own generator: the drift never changes any other draw of the world
    return np.random.default_rng([seed, 17, 20261204])


def plan_stock_drift(
    seed: int,
    sellable: Mapping[str, int],
    channels: Iterable[str],
    *,
    calm: bool,
    plant: bool,
    at: datetime,
) -> tuple[dict[str, dict[str, int]], list[dict]]:
    """Drift per channel and SKU, and the planted `stock_diff` incidents (truth form).

    `sellable`: the WMS's sellable units per SKU (on hand less locks over all warehouses);
    planted SKUs are drawn among those with at least MIN_SELLABLE. `calm`: no drift at all;
    `plant`: plant the incidents (the sandbox does from `incidents.MIN_ORDERS` orders on, as
    for every other kind). `at`: the incidents' time."""
    channels = list(channels)
    drift: dict[str, dict[str, int]] = {c: {} for c in channels}
    if calm or not channels or not sellable:
        return drift, []
    rng = drift_rng(seed)
    skus = sorted(sellable)
    for c in channels:
        noisy = rng.random(len(skus)) < NOISE_SHARE
        units = rng.choice(NOISE_UNITS, size=len(skus))
        drift[c] = {s: int(u) for s, u, n in zip(skus, units, noisy, strict=True) if n}
    pool = [s for s in skus if sellable[s] >= MIN_SELLABLE] if plant else []
    chosen = rng.choice(len(pool), size=min(STOCK_DIFF_SKUS, len(pool)), replace=False)
    incidents = []
    for k in sorted(chosen.tolist()):
        sku = pool[k]
        channel = channels[int(rng.integers(len(channels)))]
        units = int(rng.integers(STOCK_DIFF_UNITS[0], STOCK_DIFF_UNITS[1] + 1))
        units *= 1 if rng.random() < 0.5 else -1
        for c in channels:  # the planted SKU drifts nowhere else
            drift[c].pop(sku, None)
        drift[channel][sku] = units
        incidents.append(
            {
                "kind": STOCK_DIFF,
                "sku": sku,
                "channel": channel,
                "start": at.isoformat(),
                "end": at.isoformat(),
                "diff": units,
            }
        )
    return drift, incidents


def wms_totals(levels: Iterable) -> tuple[dict[str, int], dict[str, int]]:
    """(on hand, locked) per SKU over every warehouse, from `StockLevel`-like rows."""
    on_hand: dict[str, int] = {}
    locked: dict[str, int] = {}
    for level in levels:
        on_hand[level.sku] = on_hand.get(level.sku, 0) + max(int(level.on_hand), 0)
        locked[level.sku] = locked.get(level.sku, 0) + max(int(level.locked), 0)
    return on_hand, locked
