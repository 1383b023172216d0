"""Fault injection for the marketplace gateways: switchable per gateway, seeded, and lossless.

Every fault is something the real platforms do to a client, and none of them makes data
disappear for a client that retries and pages correctly:

- `rate_limit`: this share of data calls get the platform's own rate-limit error (with its retry
  hint where it has one, always 1 second here).
- `server_error`: this share of data calls get an HTTP 5xx (502/503/504, a gateway HTML page).
- `slow`: this share of data calls sleep `slow_seconds` before answering normally (past a
  client's read timeout the client sees a timeout and retries).
- `page_shift`: the first time a page after the first of a window is asked for, one order on an
  earlier page of that window is modified (its modified time moves to "now"), so the later
  pages shift by one. A client paging forwards skips a row; paging backwards (the platforms'
  advice), a cursor, or re-pulling the moved order's new modified time loses nothing.
- `duplicates`: every page after the first repeats the last row of the page before it.
- `token_expiry_after`: an access token expires after this many data calls; the platform's
  refresh flow (each gateway has one) issues a new token that again lasts that many calls.

The draw order per data call is fixed (one uniform number from the gateway's seeded RNG:
rate-limit, then server error, then slow), so a run with the same seed and the same request
sequence meets the same faults. Token refresh calls are never faulted.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["rate_limit", "server_error", "slow"]
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class FaultConfig:
    """Which faults a gateway injects. Probabilities are per data call."""

    rate_limit: float = 0
    server_error: float = 0
    slow: float = 0
    slow_seconds: float = 2.0
    page_shift: bool = False
    duplicates: bool = False
    token_expiry_after: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rate_limit", "server_error", "slow"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"FaultConfig.{name}: {value} is not a probability in 0..1")
        total = self.rate_limit + self.server_error + self.slow
        if total >= 1:
            # a client must be able to get through eventually
            raise ValueError(
                f"FaultConfig: rate_limit + server_error + slow = {total:g}; keep it below 1"
            )
        if self.slow_seconds < 0:
            raise ValueError(f"FaultConfig.slow_seconds: {self.slow_seconds} is negative")
        if self.token_expiry_after is not None and self.token_expiry_after < 1:
            raise ValueError(
                f"FaultConfig.token_expiry_after: {self.token_expiry_after}; use None or >= 1"
            )

    @property
    def any(self) -> bool:
        return bool(
            self.rate_limit
            or self.server_error
            or self.slow
            or self.page_shift
            or self.duplicates
            or self.token_expiry_after
        )


class FaultInjector:
    """The per-gateway fault state: a seeded RNG plus the windows already shifted."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._shifted: set[tuple] = set()
            self.counts: dict[str, int] = {}

    def draw(self) -> FaultKind | None:
        """The fault (if any) for the next data call."""
        cfg = self.config
        if not (cfg.rate_limit or cfg.server_error or cfg.slow):
            return None
        with self._lock:
            u = self._rng.random()
            kind: FaultKind | None = None
            if u < cfg.rate_limit:
                kind = "rate_limit"
            elif u < cfg.rate_limit + cfg.server_error:
                kind = "server_error"
            elif u < cfg.rate_limit + cfg.server_error + cfg.slow:
                kind = "slow"
            if kind:
                self.counts[kind] = self.counts.get(kind, 0) + 1
            return kind

    def choose(self, n: int) -> int:
        """A seeded index in range(n) (which order a page shift moves, which 5xx code)."""
        with self._lock:
            return self._rng.randrange(n)

    def take_shift(self, window_key: tuple) -> bool:
        """True once per window: the moment to move an order while this window is paged."""
        if not self.config.page_shift:
            return False
        with self._lock:
            if window_key in self._shifted:
                return False
            self._shifted.add(window_key)
            self.counts["page_shift"] = self.counts.get("page_shift", 0) + 1
            return True

    def note(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
