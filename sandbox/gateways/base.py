"""The machinery a platform gateway builds on: credentials and tokens, the order store, fault
injection, and the request-time view of an order. A platform module subclasses `Gateway`,
declares its routes and renders orders in its own format; this module knows no platform."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import ClassVar, Literal

import numpy as np
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sandbox.faults import FaultConfig, FaultInjector
from sandbox.gateways.common import (
    OrderState,
    PushBody,
    Sealer,
    now_utc,
    order_state,
    page_slice,
    shipment,
)
from sandbox.gateways.stock import PlatformStock
from sandbox.gateways.store import Late, OrderStore, epoch_s
from sandbox.model import Order

TokenCheck = Literal["ok", "missing", "invalid", "expired"]
Shipment = tuple[str, str, str]  # (carrier code, carrier name, tracking number)


class TokenBook:
    """Access and refresh tokens of one gateway. A token expires after `expiry_after` data calls
    (the token-expiry fault); refreshing issues a new access and refresh token, and earlier
    refresh tokens stay valid (each run of a client starts again from sandbox.json)."""

    def __init__(self, access: str, refresh: str, expiry_after: int | None = None) -> None:
        self._lock = threading.Lock()
        self._uses: dict[str, int] = {access: 0}
        self._refresh: set[str] = {refresh}
        self.expiry_after = expiry_after
        self.refreshes = 0

    def check(self, token: str | None) -> TokenCheck:
        if not token:
            return "missing"
        with self._lock:
            uses = self._uses.get(token)
            if uses is None:
                return "invalid"
            if self.expiry_after is not None and uses >= self.expiry_after:
                return "expired"
            return "ok"

    def use(self, token: str) -> None:
        with self._lock:
            if token in self._uses:
                self._uses[token] += 1

    def refresh(self, refresh_token: str | None) -> tuple[str, str] | None:
        """(new access token, new refresh token), or None for an unknown refresh token."""
        with self._lock:
            if not refresh_token or refresh_token not in self._refresh:
                return None
            access, refresh = secrets.token_hex(16), secrets.token_hex(16)
            self._uses[access] = 0
            self._refresh.add(refresh)
            self.refreshes += 1
            return access, refresh


# what the world generator knows of a marketplace, declared on its gateway class (see Gateway)
WORLD_FACTS = ("share", "shops", "order_number")


class Gateway:
    """One marketplace on loopback. Subclasses set `channel`, `token_field`, build `routes()`
    and render orders; everything else (store, faults, tokens, clock) is here.

    A subclass also states the world's facts about its marketplace (`WORLD_FACTS`; changing
    one changes every seeded world):
    `share`: the channel's weight among a generated world's orders (`sandbox.world_plan`);
    `shops`: the merchant's shops there, `(shop_id, name)` in the platform's id shape
    (`sandbox.catalog`);
    `order_number(i, t, s)`: a staticmethod giving the world's order number from the order's
    index `i` within the world, its Beijing creation time `t` (a UTC datetime shifted by 8 h)
    and a per-order salt `s`, in the platform's own shape and unique per `i`
    (`sandbox.world`)."""

    channel: ClassVar[str]
    share: ClassVar[float]
    shops: ClassVar[tuple[tuple[str, str], ...]]
    order_number: ClassVar[Callable[[int, datetime, int], str]]
    push_types: ClassVar[Mapping[str, str]]  # change kind (common.CHANGE_KINDS) -> message type
    token_field: ClassVar[str] = "access_token"
    seal_prefix: ClassVar[str] = "~"
    seal_suffix: ClassVar[str] = "~"

    def __init__(
        self,
        orders: Iterable[Order] = (),
        credentials: Mapping[str, str] | None = None,
        *,
        faults: FaultConfig | None = None,
        clock: Callable[[], datetime] | None = None,
        shipments: Mapping[str, Shipment] | None = None,
        late: Mapping[str, Late] | None = None,
        compact: bool = False,
    ) -> None:
        self.credentials: dict[str, str] = dict(credentials or self.new_credentials())
        self.shipments: dict[str, Shipment] = dict(shipments or {})
        self.store = OrderStore(
            (o for o in orders if o.channel == self.channel), late, compact=compact
        )
        self.faults = FaultInjector(faults)
        # the stock the platform displays per SKU (its stock API; loaded by sandbox.server)
        self.stock = PlatformStock()
        self.tokens = TokenBook(
            self.credentials[self.token_field],
            self.credentials.get("refresh_token") or secrets.token_hex(16),
            self.faults.config.token_expiry_after,
        )
        self.clock = clock or now_utc
        self.sealer = Sealer(f"{self.channel}:{self.secret}", self.seal_prefix, self.seal_suffix)
        self._rendered: OrderedDict[tuple[str, datetime], dict] = OrderedDict()
        self.app = Starlette(routes=self.routes())
        self.app.state.gateway = self

    # -- to implement per platform --------------------------------------------------------------
    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        raise NotImplementedError

    @property
    def secret(self) -> str:
        """The secret requests are signed with."""
        raise NotImplementedError

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def rate_limited(self) -> Response:
        """The platform's own rate-limit error (with its retry hint where it has one)."""
        raise NotImplementedError

    def render(self, state: OrderState) -> dict:
        """The full order as the platform's detail call returns it."""
        raise NotImplementedError

    @classmethod
    def build_push(
        cls,
        state: OrderState,
        kind: str,
        message_id: str,
        credentials: Mapping[str, str],
        sent: datetime,
    ) -> PushBody:
        """The platform's push message announcing `state`'s latest change (`kind`, one of
        `common.CHANGE_KINDS`), signed its way; `sent` is the send time it carries."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def set_faults(self, config: FaultConfig) -> None:
        self.faults.configure(config)
        self.tokens.expiry_after = config.token_expiry_after

    def add_orders(
        self,
        orders: Iterable[Order],
        shipments: Mapping[str, Shipment] | None = None,
        late: Mapping[str, Late] | None = None,
    ) -> list[int]:
        """Publish more orders (live mode); their numbers must be new."""
        self.shipments.update(shipments or {})
        return self.store.add((o for o in orders if o.channel == self.channel), late)

    def shipment_of(self, order: Order) -> Shipment:
        """(carrier code, carrier name, tracking number) of a shipped order: the world's
        carrier record when there is one, else a stable one derived from the order number."""
        return self.shipments.get(order.platform_order_no) or shipment(order)

    def now_s(self) -> int:
        return epoch_s(self.clock())

    def state_at(self, i: int, now_s: int) -> OrderState | None:
        modified = self.store.modified_s(i, now_s)
        if modified is None:
            return None
        order = self.store.order(i)
        return order_state(order, modified, self.store.late.get(order.platform_order_no))

    def state_of(self, platform_order_no: str, now_s: int) -> OrderState | None:
        i = self.store.index_of(str(platform_order_no))
        return None if i is None else self.state_at(i, now_s)

    def rendered(self, state: OrderState) -> dict:
        """`render(state)`, cached per (order, version): a list call and the detail call that
        follows it render the same order once. Callers must not mutate the result."""
        key = (state.order.platform_order_no, state.modified)
        hit = self._rendered.get(key)
        if hit is None:
            hit = self._rendered[key] = self.render(state)
            if len(self._rendered) > 8192:
                self._rendered.popitem(last=False)
        return hit

    def sample(self, platform_order_no: str | None = None) -> dict:
        """The full rendering of one order (its latest version): the payload fixtures."""
        i = 0 if platform_order_no is None else self.store.index_of(platform_order_no)
        if i is None or not len(self.store):
            raise KeyError(platform_order_no)
        state = self.state_at(i, max(self.store.versions_s(i)))
        assert state is not None
        return self.render(state)

    async def fault_gate(self) -> Response | None:
        """Apply this call's drawn fault: an error response to return, or None to serve."""
        kind = self.faults.draw()
        if kind == "rate_limit":
            return self.rate_limited()
        if kind == "server_error":
            code = (500, 502, 503, 504)[self.faults.choose(4)]
            return HTMLResponse(
                f"<html><head><title>{code}</title></head><body><center><h1>{code}</h1>"
                "</center><hr><center>Tengine</center></body></html>",
                status_code=code,
            )
        if kind == "slow":
            await asyncio.sleep(self.faults.config.slow_seconds)
        return None

    def shift_window(self, key: tuple, ordered: np.ndarray, start: int, now_s: int) -> bool:
        """The page-shift fault: while a window is paged past its first page, move one order
        from an earlier page out of place (its modified time becomes now). True if moved:
        the caller must recompute the window."""
        if start <= 0 or not len(ordered) or not self.faults.take_shift(key):
            return False
        victim = int(ordered[self.faults.choose(min(start, len(ordered)))])
        return self.store.bump(victim, now_s)

    def paged(
        self,
        key: tuple,
        window: Callable[[], np.ndarray],
        start: int,
        size: int,
        now_s: int,
    ) -> tuple[list[int], int]:
        """One page of a window (order indexes in the platform's sort order) and the window's
        total, with the page-shift and duplicates faults applied."""
        ordered = window()
        if self.shift_window(key, ordered, start, now_s):
            ordered = window()
        rows = page_slice(ordered, start, size, duplicates=self.faults.config.duplicates)
        if self.faults.config.duplicates and start > 0 and rows:
            self.faults.note("duplicates")
        return rows, len(ordered)
