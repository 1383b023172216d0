"""The merchant systems' API over real HTTP (uvicorn on a loopback port the OS picks)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "merchant-test-token-7f3a"


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=9, orders=400, end=END)


@pytest.fixture(scope="module")
def api(world):
    server = serve_in_thread(build_merchant_systems_app(world, TOKEN))
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:
        yield client
    server.stop()


def _all(client: httpx.Client, path: str, **params) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        resp = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        assert body["has_more"] == (cursor is not None)
        if cursor is None:
            return items


def test_token_required_and_never_echoed(api) -> None:
    bare = httpx.get(f"{api.base_url}/wms/events")
    wrong = httpx.get(f"{api.base_url}/wms/events", headers={"Authorization": "Bearer nope"})
    for resp in (bare, wrong):
        assert resp.status_code == 401
        assert resp.json()["error"] == "unauthorized"
        assert TOKEN not in resp.text
    assert httpx.get(f"{api.base_url}/health").json() == {"ok": True}


def test_paging_returns_every_record_once_in_order(api, world) -> None:
    got = _all(api, "/wms/events", limit=97)
    assert [e["event_id"] for e in got] == [e.event_id for e in world.wms_events]
    tracks = _all(api, "/carriers/tracks", limit=250)
    assert len(tracks) == len(world.tracking_events)
    assert len({t["event_id"] for t in tracks}) == len(tracks)
    behaviour = _all(api, "/behaviour/events", limit=1000)
    assert len(behaviour) == len(world.behaviour_log)
    assert {"event_id", "at", "buyer_id", "ip", "device", "action"} <= set(behaviour[0])


def test_since_and_until_select_a_time_window(api, world) -> None:
    events = world.wms_events
    since, until = events[len(events) // 3].at, events[2 * len(events) // 3].at
    got = _all(api, "/wms/events", since=since.isoformat(), until=until.isoformat(), limit=50)
    expected = [e.event_id for e in events if since <= e.at < until]
    assert [e["event_id"] for e in got] == expected and expected
    # incremental: the greatest time seen as the next `since` returns only newer (or equal) rows
    latest = max(datetime.fromisoformat(e["at"]) for e in got)
    newer = _all(api, "/wms/events", since=latest.isoformat())
    assert all(datetime.fromisoformat(e["at"]) >= latest for e in newer)
    assert len(newer) == sum(1 for e in events if e.at >= latest)


def test_tickets_shipments_and_catalogue(api, world) -> None:
    tickets = _all(api, "/cs/tickets")
    assert len(tickets) == len(world.cs_tickets) > 0
    assert {"ticket_id", "topic", "text", "status", "updated_at"} <= set(tickets[0])
    shipments = _all(api, "/carriers/shipments", limit=100)
    assert {s["tracking_no"] for s in shipments} == {s.tracking_no for s in world.shipments}
    assert {"promised_at", "delivered_at", "carrier", "updated_at"} <= set(shipments[0])
    skus = _all(api, "/catalog/skus", limit=64)
    assert [s["sku"] for s in skus] == sorted(s.sku for s in world.skus)
    assert isinstance(skus[0]["price"], str) and "hs_code" in skus[0]
    warehouses = _all(api, "/wms/warehouses")
    assert len(warehouses) >= 4 and any(w["is_front"] for w in warehouses)
    moves = _all(api, "/wms/movements", limit=1000)
    assert len(moves) == len(world.stock_movements)


def test_stock_with_filters_and_last_sync(api, world) -> None:
    everything = _all(api, "/wms/stock", limit=333)
    assert len(everything) == len(world.stock)
    west = _all(api, "/wms/stock", warehouse_id="WH-WEST", limit=40)
    assert west and all(s["warehouse_id"] == "WH-WEST" for s in west)
    assert len(west) == sum(1 for s in world.stock if s.warehouse_id == "WH-WEST")
    one = _all(api, "/wms/stock", sku=world.stock[0].sku)
    assert {s["sku"] for s in one} == {world.stock[0].sku}
    synced = {s["warehouse_id"]: datetime.fromisoformat(s["last_sync_at"]) for s in everything}
    assert (END - synced["WH-WEST"]).total_seconds() > 30 * 60


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-20T10:00:00"}, "UTC offset"),
        ({"cursor": "garbage!!"}, "cursor"),
    ],
)
def test_bad_parameters_get_400(api, params, needle) -> None:
    resp = api.get("/wms/events", params=params)
    assert resp.status_code == 400
    assert resp.json()["error"] == "bad_request" and needle in resp.json()["message"]
