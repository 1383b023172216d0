"""`POST /wms/allocations`: accepts, rejects with a reason, is idempotent, replaces a changed
allocation before shipping; the played future appears in the WMS and carrier endpoints in
order, as the (pinned) clock reaches it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = END + timedelta(minutes=5)
TOKEN = "alloc-test-token-51c2"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture()
def env():
    world = generate_world(seed=9, orders=400, end=END)
    clock = Clock(NOW)
    app = build_merchant_systems_app(world, TOKEN, clock=clock, time_scale=60)
    server = serve_in_thread(app)
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:
        yield world, clock, client, app
    server.stop()


def _open(world, n: int) -> list:
    shipped = {(s.channel, s.platform_order_no) for s in world.shipments}
    out = [
        o
        for o in world.orders
        if o.status_at() == "paid_pending_review"
        and o.channel != "pos"
        and o.country == "CN"
        and (o.channel, o.platform_order_no) not in shipped
    ]
    assert len(out) >= n
    return out[:n]


def _alloc(o, warehouse: str = "WH-EAST", carrier: str = "SF") -> dict:
    return {
        "channel": o.channel,
        "platform_order_no": o.platform_order_no,
        "warehouse_id": warehouse,
        "carrier": carrier,
        "decided_at": NOW.isoformat(),
        "promised_delivery_at": (NOW + timedelta(days=3)).isoformat(),
    }


def _all(client: httpx.Client, path: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        body = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert body.status_code == 200, body.text
        items += body.json()["items"]
        cursor = body.json()["next_cursor"]
        if cursor is None:
            return items


def _mine(rows: list[dict], orders) -> list[dict]:
    """The rows of `orders` from the played futures (the world's own history ends at END)."""
    keys = {(o.channel, o.platform_order_no) for o in orders}
    return [
        r
        for r in rows
        if (r["channel"], r["platform_order_no"]) in keys
        and datetime.fromisoformat(r.get("at") or r["updated_at"]) >= NOW
    ]


def test_accepts_rejects_with_reasons_and_is_idempotent(env) -> None:
    world, _, client, app = env
    orders = _open(world, 3)
    shipped = world.shipments[0]
    batch = [_alloc(o) for o in orders] + [
        {**_alloc(orders[0]), "platform_order_no": "NO-SUCH-ORDER"},
        {**_alloc(orders[0]), "warehouse_id": "WH-MOON"},
        {**_alloc(orders[0]), "channel": shipped.channel,
         "platform_order_no": shipped.platform_order_no},
        {**_alloc(orders[0]), "decided_at": "yesterday"},
    ]  # fmt: skip
    resp = client.post("/wms/allocations", json={"allocations": batch})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 3
    reasons = [r["reason"] for r in body["rejected"]]
    assert reasons[:3] == ["unknown_order", "unknown_warehouse", "already_shipped"]
    assert reasons[3].startswith("invalid: decided_at")
    events = _mine(_all(client, "/wms/events"), orders)
    assert [e["type"] for e in events].count("allocate") == 3
    assert all(datetime.fromisoformat(e["at"]) <= NOW for e in events)  # nothing from the future

    again = client.post("/wms/allocations", json={"allocations": batch[:3]}).json()
    assert again == {"accepted": 3, "rejected": [], "replaced": 0, "unchanged": 3}
    assert len(app.state.allocations.deliveries()) == 3


def test_bad_body_and_token(env) -> None:
    _, _, client, _ = env
    assert client.post("/wms/allocations", json={"nope": []}).status_code == 400
    bare = httpx.post(f"{client.base_url}/wms/allocations", json={"allocations": []})
    assert bare.status_code == 401


def test_the_future_appears_in_order_as_the_clock_moves(env) -> None:
    world, clock, client, app = env
    orders = _open(world, 4)
    body = client.post(
        "/wms/allocations", json={"allocations": [_alloc(o, "WH-SOUTH", "ZTO") for o in orders]}
    ).json()
    assert body["accepted"] == 4
    # a changed carrier before shipping replaces the allocation
    change = [_alloc(orders[0], "WH-NORTH", "JD")]
    assert client.post("/wms/allocations", json={"allocations": change}).json()["replaced"] == 1

    truth = {d["platform_order_no"]: d for d in app.state.allocations.deliveries()}
    assert truth[orders[0].platform_order_no]["carrier"] == "JD"
    assert truth[orders[1].platform_order_no]["warehouse_id"] == "WH-SOUTH"
    delivered = max(datetime.fromisoformat(d["delivered_at"]) for d in truth.values())
    assert NOW < delivered < NOW + timedelta(hours=6)  # days of world time, minutes live

    # half way: shipments exist but not all delivered; nothing from the future shows
    clock.at = NOW + (delivered - NOW) / 2
    tracks = _mine(_all(client, "/carriers/tracks"), orders)
    assert tracks and all(datetime.fromisoformat(t["at"]) <= clock.at for t in tracks)
    half = _mine(_all(client, "/carriers/shipments"), orders)
    assert all(s["delivered_at"] is None or s["status"] == "delivered" for s in half)
    # the end: every order delivered, WMS and carrier steps in order
    clock.at = delivered + timedelta(minutes=1)
    events = _mine(_all(client, "/wms/events"), orders)
    tracks = _mine(_all(client, "/carriers/tracks"), orders)
    shipments = _mine(_all(client, "/carriers/shipments"), orders)
    for o in orders:
        mine = [e for e in events if e["platform_order_no"] == o.platform_order_no]
        kinds = [e["type"] for e in mine]
        if o is orders[0]:  # what the replaced allocation did by then stays, then the new one
            assert kinds.count("allocate") == 2 and kinds[-4:] == [
                "allocate",
                "pick",
                "pack",
                "ship",
            ]
            assert {e["warehouse_id"] for e in mine[-4:]} == {"WH-NORTH"}
        else:
            assert kinds == ["allocate", "pick", "pack", "ship"]
        steps = [t["status"] for t in tracks if t["platform_order_no"] == o.platform_order_no]
        assert steps[0] == "created" and steps[-1] == "delivered"
        assert set(steps) <= {"created", "pickup_failed", "picked_up", "in_transit", "delivered"}
        times = [t["at"] for t in tracks if t["platform_order_no"] == o.platform_order_no]
        assert times == sorted(times)
        ship = [s for s in shipments if s["platform_order_no"] == o.platform_order_no]
        assert len(ship) == 1 and ship[0]["status"] == "delivered"
        assert ship[0]["delivered_at"] == truth[o.platform_order_no]["delivered_at"]
    # once shipped, a change is refused
    late = client.post("/wms/allocations", json={"allocations": [_alloc(orders[1], "WH-EAST")]})
    assert late.json()["rejected"] == [
        {"platform_order_no": orders[1].platform_order_no, "reason": "already_shipped"}
    ]


def test_the_same_seed_plays_the_same_future() -> None:
    world = generate_world(seed=9, orders=400, end=END)
    plays = []
    for _ in range(2):
        app = build_merchant_systems_app(world, TOKEN, clock=Clock(NOW), time_scale=60)
        app.state.allocations.submit([_alloc(o) for o in _open(world, 5)])
        plays.append(app.state.allocations.deliveries())
    assert plays[0] == plays[1]
