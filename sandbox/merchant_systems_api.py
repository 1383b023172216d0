"""The merchant's own systems as small JSON HTTP APIs: WMS, carrier tracking, CS desk,
storefront behaviour log and the SKU catalogue.

Every endpoint except `/health` needs `Authorization: Bearer <token>`; a missing or wrong token
gets `401 {"error": "unauthorized", ...}` (the token is never echoed).

| endpoint | records (sorted by) | time field for `since`/`until` |
|---|---|---|
| `GET /wms/warehouses` | warehouses (warehouse_id) | – |
| `GET /catalog/skus` | SKUs (sku) | – |
| `GET /wms/stock[?warehouse_id=&sku=]` | stock levels (warehouse_id, sku) | – |
| `GET /wms/events` | pick/pack/ship… events (at, event_id) | `at` |
| `GET /wms/movements` | stock movements (at, movement_id) | `at` |
| `GET /carriers/shipments` | one per shipped order (updated_at, tracking_no) | `updated_at` |
| `GET /carriers/tracks` | tracking events (at, event_id) | `at` |
| `GET /cs/tickets` | CS tickets (updated_at, ticket_id) | `updated_at` |
| `GET /behaviour/events` | behaviour log (at, event_id) | `at` |
| `GET /risk/feedback` | chargebacks and audit verdicts (reported_at, feedback_id) | `reported_at` |

| `POST /wms/allocations` | OrderPulse's routing decisions in; see below | – |

Query parameters of the list endpoints: `limit` (1..1000, default 500), `cursor` (the
`next_cursor` of the previous page, opaque), and for the time-ordered ones `since` (inclusive)
and `until` (exclusive), ISO 8601 with an offset (`2026-11-20T10:00:00+08:00`). A response is
`{"items": [...], "next_cursor": str | null, "has_more": bool}`; `next_cursor` is null on the
last page. Incremental reading: remember the greatest time seen and pass it as `since` next
time (records at exactly that time come again: upsert by id). Pages are stable while paging:
records never change order. A bad parameter gets `400 {"error": "bad_request", "message": ...}`.

Record fields (all times ISO 8601 with offset, amounts decimal strings):
- warehouse: warehouse_id, name, province, city, district, latitude, longitude, is_front, region
- sku: sku, title, category, price, weight_kg, hs_code, barcode, is_hot
- stock: warehouse_id, sku, on_hand, locked, available, safety_stock, last_sync_at
- wms event: event_id, at, warehouse_id, channel, platform_order_no, type
  (allocate|allocate_failed|pick|pack|ship|return_received), operator, detail
- movement: movement_id, at, warehouse_id, sku, kind (inbound|adjust|lock|release|ship|return),
  qty, channel, platform_order_no
- shipment: channel, platform_order_no, warehouse_id, carrier, tracking_no, shipped_at,
  promised_at, delivered_at, status, updated_at
- track: event_id, at, carrier, tracking_no, channel, platform_order_no, status
  (created|picked_up|pickup_failed|in_transit|out_for_delivery|delivered|rejected|returning),
  location, description
- ticket: ticket_id, channel, platform_order_no, buyer_id, opened_at, updated_at, topic, text,
  status (open|pending|resolved), priority (low|normal|high)
- behaviour: event_id, at, buyer_id, ip, device, action
  (view|cart_add|cart_remove|submit_order|pay), channel, sku, platform_order_no
- risk feedback (`sandbox.risk_feedback`): feedback_id, kind (chargeback|audit), channel,
  platform_order_no, reported_at, verdict (fraud|coupon_abuse|honest; a chargeback claims one
  of the first two), reason (unauthorized_payment|coupon_clawback|audit), amount

Allocations (`sandbox.allocations`): `POST /wms/allocations` with
`{"allocations": [{"channel", "platform_order_no", "warehouse_id", "carrier", "decided_at",
"promised_delivery_at"}]}` (at most 1000 per request; times ISO 8601 with an offset,
promised_delivery_at may be null) answers `200 {"accepted": n, "rejected": [{"platform_order_no",
"reason"}], "replaced": n, "unchanged": n}`. Reasons: `unknown_order`, `unknown_warehouse`,
`unknown_carrier`, `already_shipped`, `superseded_in_batch` (a later entry of the same batch
for the same order wins), `invalid: <field>: <message>`. Re-sending an allocation changes
nothing (it counts as accepted and unchanged); a changed warehouse or carrier before the order
ships replaces it. The sandbox then plays each accepted order's future (`sandbox.outcomes`) on
its clock: its WMS events (allocate, pick, pack, ship), its carrier shipment and tracks
(created, pickup_failed, picked_up, in_transit, delivered) appear in the list endpoints above
once their time has come (a shipment shows its latest state). A body that is not
`{"allocations": [...]}` gets 400.
"""

from __future__ import annotations

import base64
import bisect
import hmac
import json
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.allocations import MAX_BATCH, AllocationBook
from sandbox.merchant_systems_records import record_dict
from sandbox.world import World

MAX_LIMIT = 1000
DEFAULT_LIMIT = 500


class BadRequest(Exception):
    pass


@dataclass
class _Resource:
    """A sorted list of records with their sort keys (time-ordered ones start with a float)."""

    records: list[Any]
    keys: Sequence[tuple]
    timed: bool
    to_dict: Callable[[Any], dict]


PLAYED = {"wms_events": ("at", "event_id"), "shipments": ("updated_at", "tracking_no"),
          "tracks": ("at", "event_id")}  # fmt: skip
_WORLD_ATTR = {"wms_events": "wms_events", "shipments": "shipments", "tracks": "tracking_events"}


class _TimedKeys(Sequence):
    """The sort key (epoch seconds, id) of each of `records`, made when asked: held as a list
    they took ~1.5 kB an order (17 records of a million-order world, a tuple and a float each),
    and a page's bisects read only log2(n) of them."""

    __slots__ = ("records", "time_attr", "id_attr")

    def __init__(self, records: list, time_attr: str, id_attr: str) -> None:
        self.records = records
        self.time_attr = time_attr
        self.id_attr = id_attr

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[float, str]:
        record = self.records[i]
        return getattr(record, self.time_attr).timestamp(), getattr(record, self.id_attr)


def _timed(records: list, time_attr: str, id_attr: str) -> _Resource:
    rows = sorted(records, key=lambda r: (getattr(r, time_attr), getattr(r, id_attr)))
    return _Resource(rows, _TimedKeys(rows, time_attr, id_attr), True, record_dict)


def _keyed(records: list, key: Callable[[Any], tuple], to_dict: Callable) -> _Resource:
    rows = sorted(records, key=key)
    return _Resource(rows, [key(r) for r in rows], False, to_dict)


def _index(world: World) -> dict[str, _Resource]:
    return {
        "warehouses": _keyed(world.warehouses, lambda w: (w.warehouse_id,), lambda w: w.as_dict()),
        "skus": _keyed(world.skus, lambda s: (s.sku,), lambda s: s.as_dict()),
        "stock": _keyed(world.stock, lambda s: (s.warehouse_id, s.sku), record_dict),
        "wms_events": _timed(world.wms_events, "at", "event_id"),
        "movements": _timed(world.stock_movements, "at", "movement_id"),
        "shipments": _timed(world.shipments, "updated_at", "tracking_no"),
        "tracks": _timed(world.tracking_events, "at", "event_id"),
        "tickets": _timed(world.cs_tickets, "updated_at", "ticket_id"),
        "behaviour": _timed(world.behaviour_log, "at", "event_id"),
        "risk_feedback": _timed(world.risk_feedback, "reported_at", "feedback_id"),
    }


def _encode_cursor(key: tuple) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(text: str, timed: bool) -> tuple:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = tuple(json.loads(raw))
        if timed and not (len(key) == 2 and isinstance(key[0], int | float)):
            raise ValueError
        return key
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("cursor is not a next_cursor this API returned") from exc


def _parse_time(name: str, text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(f"{name}={text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise BadRequest(f"{name}={text!r} needs a UTC offset, e.g. 2026-11-20T10:00:00+08:00")
    return value.timestamp()


def _parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit={text!r} must be an integer 1..{MAX_LIMIT}")
    return int(text)


def page(
    resource: _Resource,
    params: dict[str, str],
    keep: Callable[[Any], bool] | None = None,
) -> dict:
    """One page of `resource` after `cursor`, within [since, until), filtered by `keep`."""
    limit = _parse_limit(params.get("limit"))
    start = 0
    if resource.timed:
        since = _parse_time("since", params.get("since"))
        until = _parse_time("until", params.get("until"))
        if since is not None:
            start = bisect.bisect_left(resource.keys, (since,))
        stop = bisect.bisect_left(resource.keys, (until,)) if until is not None else None
    else:
        stop = None
    if params.get("cursor"):
        after = _decode_cursor(params["cursor"], resource.timed)
        start = max(start, bisect.bisect_right(resource.keys, after))
    stop = len(resource.records) if stop is None else stop
    items: list[dict] = []
    i = start
    while i < stop and len(items) < limit:
        rec = resource.records[i]
        if keep is None or keep(rec):
            items.append(resource.to_dict(rec))
        i += 1
    has_more = i < stop
    cursor = _encode_cursor(resource.keys[i - 1]) if has_more and i > start else None
    return {"items": items, "next_cursor": cursor, "has_more": has_more}


def build_merchant_systems_app(
    world: World,
    token: str,
    *,
    clock: Callable[[], datetime] | None = None,
    time_scale: float = 1.0,
    seed: int | None = None,
) -> FastAPI:
    """The merchant systems' API over `world`, guarded by `token`. `set_world(app, world)` swaps
    the data. Allocations (`app.state.allocations`, an `AllocationBook`) play their futures on
    `clock` (default: the wall clock), compressed by `time_scale`, with `seed` (default the
    world's)."""
    if not token:
        raise ValueError("the merchant systems' API needs a non-empty token")
    app = FastAPI(title="OrderPulse sandbox: merchant systems", docs_url=None, redoc_url=None)
    app.state.allocations = AllocationBook(world, seed=seed, clock=clock, time_scale=time_scale)
    app.state.index_lock = threading.Lock()
    set_world(app, world)
    expected = f"Bearer {token}".encode()

    @app.middleware("http")
    async def _auth(request: Request, call_next):  # noqa: ANN001, ANN202
        if request.url.path != "/health":
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {"error": "unauthorized", "message": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await call_next(request)

    def _list(name: str, request: Request, keep: Callable | None = None) -> JSONResponse:
        state = request.app.state
        if name in PLAYED:
            _refresh_played(request.app)
            spans = state.played_spans
            now = state.allocations.clock().timestamp()

            def keep(r: Any) -> bool:  # noqa: F811 - played records show once they happen
                span = spans.get(id(r))
                return span is None or span[0] <= now < span[1]

        try:
            body = page(state.records_index[name], dict(request.query_params), keep)
        except BadRequest as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)
        return JSONResponse(body)

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}

    @app.post("/wms/allocations")
    async def allocations(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        items = body.get("allocations") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return JSONResponse(
                {"error": "bad_request", "message": 'the body must be {"allocations": [...]}'},
                status_code=400,
            )
        if len(items) > MAX_BATCH:
            return JSONResponse(
                {"error": "bad_request",
                 "message": f"{len(items)} allocations; send at most {MAX_BATCH} per request"},
                status_code=400,
            )  # fmt: skip
        return JSONResponse(request.app.state.allocations.submit(items))

    @app.get("/wms/warehouses")
    def warehouses(request: Request) -> JSONResponse:
        return _list("warehouses", request)

    @app.get("/catalog/skus")
    def skus(request: Request) -> JSONResponse:
        return _list("skus", request)

    @app.get("/wms/stock")
    def stock(request: Request) -> JSONResponse:
        wh = request.query_params.get("warehouse_id")
        sku = request.query_params.get("sku")
        keep = None
        if wh or sku:

            def keep(s: Any) -> bool:
                return (not wh or s.warehouse_id == wh) and (not sku or s.sku == sku)

        return _list("stock", request, keep)

    def lister(kind: str):  # noqa: ANN202 - a FastAPI endpoint
        def endpoint(request: Request) -> JSONResponse:
            return _list(kind, request)

        return endpoint

    # the plain record lists: one GET each, paged and filtered alike by `_list`
    for path, kind in (
        ("/wms/events", "wms_events"),
        ("/wms/movements", "movements"),
        ("/carriers/shipments", "shipments"),
        ("/carriers/tracks", "tracks"),
        ("/cs/tickets", "tickets"),
        ("/behaviour/events", "behaviour"),
        ("/risk/feedback", "risk_feedback"),
    ):
        app.add_api_route(path, lister(kind), methods=["GET"], name=kind)

    return app


def set_world(app: FastAPI, world: World) -> None:
    """Serve `world` from now on (e.g. after a scenario merge or a live tick); the allocations
    already played stay."""
    book: AllocationBook = app.state.allocations
    book.observe(world)
    with app.state.index_lock:
        app.state.world = world
        app.state.records_index = _index(world)
        app.state.played_version = None
    _refresh_played(app)


def _refresh_played(app: FastAPI) -> None:
    """Merge the played allocations' records into the time-ordered resources they touch (when
    the book changed since the last merge)."""
    book: AllocationBook = app.state.allocations
    with app.state.index_lock:
        if app.state.played_version == book.version:
            return
        played = book.records()
        spans: dict[int, tuple[float, float]] = {}
        for name, (time_attr, id_attr) in PLAYED.items():
            rows = played[name]
            spans.update({id(r): (since, until) for r, since, until in rows})
            world_rows = getattr(app.state.world, _WORLD_ATTR[name])
            merged = world_rows + [r for r, _, _ in rows] if rows else world_rows
            app.state.records_index[name] = _timed(merged, time_attr, id_attr)
        app.state.played_spans = spans
        app.state.played_version = book.version


@dataclass
class RunningServer:
    """A uvicorn server in a background thread (tests, `sandbox serve`)."""

    server: uvicorn.Server
    thread: threading.Thread
    base_url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Run `app` on `host:port` (port 0: one the OS picks) until `.stop()`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        thread.join(timeout=0.01)
    if not server.started:
        raise RuntimeError(f"merchant systems API did not start on {host}:{sock.getsockname()[1]}")
    return RunningServer(server, thread, f"http://{host}:{sock.getsockname()[1]}")
