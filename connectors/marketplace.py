"""What every marketplace client offers (`MarketplaceClient`), the base class the six platform
modules build on (signed call with retries and token refresh, page assembly with detail and
batch-decrypt calls), the registry and `build_client`.

A client yields one `list[RawOrder]` per page. Each payload is the platform's own full order JSON
(the list entry merged with the detail call where the list is partial) plus one key `_decrypted`
holding the clear receiver `{name, phone, address}` from the platform's batch decrypt API
(`address` is the street part below the district; all three are null where the platform sent no
ciphertext, e.g. PDD once an order has shipped). `platform_order_no` is the platform's order id
as a string and `modified_at` its modified time as an aware datetime.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import SecretStr

from connectors.channels_config import load_channels
from connectors.credentials import load_credentials, reveal
from connectors.http import (
    Http,
    TokenExpired,
    Window,
    make_http_client,
    register_secret,
    require_tls,
    window_text,
)
from connectors.raw_loader import RawOrder
from kernel.timezones import BEIJING

DECRYPTED = "_decrypted"
log = logging.getLogger(__name__)


@runtime_checkable
class MarketplaceClient(Protocol):
    channel: str
    max_window: timedelta

    def fetch_window(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Every order modified in [start, end], one list per page."""
        ...

    def fetch_orders(self, order_nos: Sequence[str]) -> list[RawOrder]:
        """These orders by id (detail calls), e.g. the ones a push message named."""
        ...


class BaseClient:
    """Shared plumbing; a platform module implements `invoke`, paging, parsing and decrypt."""

    channel: ClassVar[str]
    max_window: ClassVar[timedelta]
    max_page_size: ClassVar[int] = 100
    # how far behind the platform's clock a window must end (PDD: 3 min; Youzan: 30 s)
    settle: ClassVar[timedelta] = timedelta(0)
    # the platform's access-token field in creds (refreshed in place)
    token_field: ClassVar[str] = "access_token"

    def __init__(self, creds: Mapping[str, Any], http: Http, page_size: int | None = None):
        self.creds = dict(creds)
        self.http = http
        self.base_url = require_tls(
            reveal(self.creds["base_url"]).rstrip("/"),
            what=f"{self.channel} base_url",
            fix=f"set ORDERPULSE_{self.channel.upper()}_BASE_URL to the https:// gateway",
        )
        self.page_size = max(1, min(page_size or self.max_page_size, self.max_page_size))
        for value in self.creds.values():
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value())
        self._token_lock = threading.Lock()
        self._token_generation = 0

    # -- credentials ----------------------------------------------------------------------
    def secret(self, field: str) -> str:
        return reveal(self.creds[field])

    @property
    def token(self) -> str:
        return self.secret(self.token_field)

    def set_tokens(self, access: str, refresh: str | None = None) -> None:
        register_secret(access)
        self.creds[self.token_field] = SecretStr(access)
        if refresh:
            register_secret(refresh)
            self.creds["refresh_token"] = SecretStr(refresh)

    @property
    def can_refresh(self) -> bool:
        return "refresh_token" in self.creds and type(self).refresh is not BaseClient.refresh

    # -- one signed call --------------------------------------------------------------------
    def call(self, api: str, params: dict[str, Any], *, window: Window = None) -> Any:
        """One API call with retries and (if the platform can) one token refresh."""
        return self.http.call(
            lambda: self._attempt(api, params),
            channel=self.channel,
            what=api,
            window=window,
            refresh=self._refresh_once if self.can_refresh else None,
        )

    def _attempt(self, api: str, params: dict[str, Any]) -> Any:
        generation = self._token_generation
        try:
            return self.invoke(api, params)
        except TokenExpired as err:
            err.token_generation = generation
            raise

    def _refresh_once(self, err: TokenExpired) -> bool:
        # detail calls run in parallel: only the first thread to see the expiry refreshes
        with self._token_lock:
            if err.token_generation != self._token_generation:
                return False
            self.refresh()
            self._token_generation += 1
            return True

    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        """Sign and send one request; return the response's payload or raise PlatformError."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Exchange the refresh token for a new access token (platform's refresh endpoint)."""
        raise NotImplementedError

    # -- what a platform module provides ------------------------------------------------------
    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        """The list call's entries for [start, end], one list per page."""
        raise NotImplementedError

    def order_no(self, order: dict[str, Any]) -> str:
        raise NotImplementedError

    def modified_at(self, order: dict[str, Any]) -> datetime:
        raise NotImplementedError

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        """The full order from the platform's detail call."""
        raise NotImplementedError

    def complete(self, entries: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
        """Full orders for a page of list entries (default: the list is already complete)."""
        return entries

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        """{order_no: {name, phone, address}} from the platform's batch decrypt API."""
        raise NotImplementedError

    # -- assembled here ---------------------------------------------------------------------
    def fetch_window(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        window = (start, end)
        # an order repeated across pages (or met again when a moving window is paged a second
        # time) at the same modified time is not fetched, decrypted or loaded again
        done: dict[str, datetime] = {}
        for entries in self.list_pages(start, end):
            fresh = []
            for entry in _unique(self, entries):
                no, modified = self.order_no(entry), self.modified_at(entry)
                if done.get(no) != modified:
                    done[no] = modified
                    fresh.append(entry)
            if fresh:
                yield self.assemble(self.complete(fresh, window), window)

    def fetch_orders(self, order_nos: Sequence[str]) -> list[RawOrder]:
        unique = list(dict.fromkeys(str(no) for no in order_nos))
        return self.assemble(self.map(self.detail, unique), None)

    def assemble(self, orders: list[dict[str, Any]], window: Window) -> list[RawOrder]:
        clear = self.decrypt(orders, window) if orders else {}
        rows = []
        for order in orders:
            no = self.order_no(order)
            payload = {**order, DECRYPTED: clear.get(no) or _EMPTY_CLEAR}
            rows.append(RawOrder(no, self.modified_at(order), payload))
        return rows

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return self.http.map(fn, items)

    def numbered_pages(
        self,
        fetch: Callable[[int], tuple[list[dict[str, Any]], int]],
        *,
        first: int,
        backwards: bool,
        window: Window,
        max_passes: int = 4,
    ) -> Iterator[list[dict[str, Any]]]:
        """Page a window by page numbers. `fetch(page)` returns (entries, total).

        Orders modified while a window is paged move and shift the pages after them. Paging
        backwards (the platforms' advice) turns most shifts into harmless repeats; when the total
        still moved, or fewer distinct orders than the total came back, the window is paged
        again (the loader de-duplicates what repeats).
        """
        for attempt in range(1, max_passes + 1):
            entries, total = fetch(first)
            yield entries
            seen = {self.order_no(e) for e in entries}
            pages = max(1, -(-total // self.page_size))
            numbers = range(first + 1, first + pages)
            stable = True
            for page in reversed(numbers) if backwards else numbers:
                entries, now_total = fetch(page)
                yield entries
                seen.update(self.order_no(e) for e in entries)
                stable = stable and now_total == total
            if stable and len(seen) >= total:
                return
            log.info(
                "%s: window %s moved while paged (total %d, %d distinct seen), pass %d again",
                self.channel,
                window_text(window),
                total,
                len(seen),
                attempt + 1,
            )
        log.warning("%s: window %s still moving after %d passes", self.channel, window, max_passes)


_EMPTY_CLEAR = {"name": None, "phone": None, "address": None}


def _unique(client: BaseClient, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page's entries once per order (a platform may repeat a row across pages)."""
    by_no: dict[str, dict[str, Any]] = {}
    for entry in entries:
        by_no[client.order_no(entry)] = entry
    return list(by_no.values())


# -- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, type[BaseClient]] = {}


def register(cls: type[BaseClient]) -> type[BaseClient]:
    _REGISTRY[cls.channel] = cls
    return cls


def build_client(
    channel: str, creds: Mapping[str, Any], http: Http, page_size: int | None = None
) -> MarketplaceClient:
    """The signed client of `channel` (a marketplace of config/channels.yaml, whose module is
    `connectors.<channel>`) on the run's shared `http`."""
    load_channels().marketplace(channel)  # ValueError naming the configured marketplaces
    if channel not in _REGISTRY:
        importlib.import_module(f"connectors.{channel}")
    return _REGISTRY[channel](creds, http, page_size)


@contextmanager
def open_client(
    channel: str,
    sandbox_file: Path | None,
    *,
    timeout: float = 10.0,
    page_size: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[MarketplaceClient]:
    """`channel`'s signed client, with its credentials (env, else `sandbox_file`) on an HTTP
    layer of its own, closed at the end."""
    creds = load_credentials(channel, sandbox_file, environ=environ)
    with make_http_client(timeout=timeout) as http:
        yield build_client(channel, creds, http, page_size=page_size)


# -- time and window helpers the platforms share ------------------------------------------------


def beijing_text(moment: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time (TOP, JD, PDD, Youzan)."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def parse_beijing(text: str | None) -> datetime | None:
    """Parse `yyyy-MM-dd HH:mm:ss[.fff]` Beijing time; `0001-01-01...` (JD) means unset."""
    if not text or text.startswith("0001-01-01"):
        return None
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def from_unix(value: int | float | str, *, millis: bool = False) -> datetime:
    seconds = float(value) / (1000 if millis else 1)
    return datetime.fromtimestamp(seconds, UTC)


def floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def ceil_second(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def windows(start: datetime, end: datetime, step: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """[start, end] cut into consecutive windows no longer than `step`, on whole seconds (the
    platforms' resolution: a window widened to whole seconds must not outgrow `step`)."""
    cursor, end = floor_second(start), ceil_second(end)
    while cursor < end:
        stop = min(cursor + step, end)
        yield cursor, stop
        cursor = stop
