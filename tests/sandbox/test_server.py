"""The sandbox process: sandbox.json and truth.json, every gateway serving the world over real
HTTP, faults switched at run time, scenario files, live mode with push, the ERP hook."""

from __future__ import annotations

import hashlib
import json
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.faults import FaultConfig
from sandbox.gateways.samples import sample_orders
from sandbox.model import MARKETPLACES
from sandbox.server import Sandbox, serve_app

CONTRACT = {
    "taobao": {"base_url", "app_key", "app_secret", "session", "refresh_token"},
    "jd": {"base_url", "app_key", "app_secret", "access_token"},
    "douyin": {"base_url", "app_key", "app_secret", "access_token", "refresh_token"},
    "pdd": {"base_url", "client_id", "client_secret", "access_token", "refresh_token"},
    "kuaishou": {
        "base_url",
        "app_key",
        "app_secret",
        "sign_secret",
        "access_token",
        "refresh_token",
    },
    "youzan": {"base_url", "client_id", "client_secret", "access_token", "refresh_token"},
}


def pdd_call(entry: dict, api: str, biz: dict) -> dict:
    """A PDD request signed per channels.md §4 (independent of the gateway's code)."""
    params = {
        "type": api,
        "client_id": entry["client_id"],
        "access_token": entry["access_token"],
        "timestamp": str(int(time.time())),
        "data_type": "JSON",
        "version": "V1",
        **biz,
    }
    s = "".join(f"{k}{params[k]}" for k in sorted(params))
    secret = entry["client_secret"]
    params["sign"] = hashlib.md5((secret + s + secret).encode()).hexdigest().upper()
    return httpx.post(f"{entry['base_url']}/api/router", json=params, timeout=10).json()


def youzan_sold(entry: dict, start: datetime, end: datetime, page: int) -> dict:
    body = {"start_update": _bj(start), "end_update": _bj(end), "page_no": page, "page_size": 100}
    return httpx.post(
        f"{entry['base_url']}/api/youzan.trades.sold.get/4.0.4",
        params={"access_token": entry["access_token"]},
        json=body,
        timeout=10,
    ).json()


def _bj(moment: datetime) -> str:
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("sbhome")
    with Sandbox(home, seed=3, orders=600, days=1) as sb:
        yield sb


def test_sandbox_json_is_private_and_has_the_contract_shape(sandbox: Sandbox) -> None:
    path = sandbox.home / "sandbox.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    for channel, keys in CONTRACT.items():
        assert keys <= set(document["channels"][channel]), channel
        assert document["channels"][channel]["base_url"].startswith("http://127.0.0.1:")
    assert set(document["merchant_systems"]) == {"base_url", "token"}
    assert document["generated"]["seed"] == 3 and document["generated"]["orders"] == 600
    assert {"sftp", "erp"} <= set(document)
    assert document == sandbox.endpoints


def test_truth_file_lists_every_published_order_once(sandbox: Sandbox) -> None:
    on_disk = json.loads((sandbox.home / "sandbox" / "truth.json").read_text())
    assert on_disk == sandbox.truth()
    keys = [(o["channel"], o["platform_order_no"]) for o in on_disk["orders"]]
    assert len(keys) == len(set(keys)) == len(sandbox.world.orders)
    # a small world plants only the stale warehouse (and any sold-out SKU) among the incidents
    assert on_disk["incidents"] == sandbox.world.incidents
    assert "stock_sync_stale" in {i["kind"] for i in on_disk["incidents"]}


def test_a_calm_sandbox_lists_no_incidents(tmp_path: Path) -> None:
    with Sandbox(tmp_path, seed=3, orders=300, days=1, calm=True) as sb:
        on_disk = json.loads((sb.home / "sandbox" / "truth.json").read_text())
        assert on_disk["incidents"] == [] and len(on_disk["orders"]) == 300
        assert json.loads((sb.home / "sandbox.json").read_text())["generated"]["calm"] is True


def test_gateways_serve_exactly_the_truths_orders(sandbox: Sandbox) -> None:
    channels = sandbox.endpoints["channels"]
    now = datetime.now(UTC).replace(microsecond=0)
    start = sandbox.world.start - timedelta(minutes=1)
    truth = sandbox.truth()["orders"]

    pdd = []
    a = start
    while a <= now:
        b = min(a + timedelta(minutes=30), now)
        page = 1
        while True:
            body = pdd_call(
                channels["pdd"],
                "pdd.order.number.list.increment.get",
                {
                    "start_updated_at": int(a.timestamp()),
                    "end_updated_at": int(b.timestamp()),
                    "page": page,
                    "page_size": 100,
                    "use_has_next": "true",
                },
            )
            data = body["order_sn_increment_get_response"]
            pdd += [o["order_sn"] for o in data["order_sn_list"]]
            if not data["has_next"]:
                break
            page += 1
        a = b + timedelta(seconds=1)
    assert sorted(pdd) == sorted(o["platform_order_no"] for o in truth if o["channel"] == "pdd")

    youzan, page = [], 1
    while True:
        data = youzan_sold(channels["youzan"], start, now, page)["data"]
        youzan += [e["full_order_info"]["order_info"]["tid"] for e in data["full_order_info_list"]]
        if page * 100 >= data["total_results"]:
            break
        page += 1
    assert sorted(youzan) == sorted(
        o["platform_order_no"] for o in truth if o["channel"] == "youzan"
    )


def test_merchant_systems_api_answers_with_the_token_from_sandbox_json(sandbox: Sandbox) -> None:
    api = sandbox.endpoints["merchant_systems"]
    assert httpx.get(f"{api['base_url']}/wms/warehouses", timeout=10).status_code == 401
    answer = httpx.get(
        f"{api['base_url']}/wms/warehouses", headers={"authorization": f"Bearer {api['token']}"}
    )
    assert answer.status_code == 200 and answer.json()["items"]


def test_set_faults_switches_a_running_gateway(sandbox: Sandbox) -> None:
    entry = sandbox.endpoints["channels"]["youzan"]
    now = datetime.now(UTC)
    sandbox.set_faults("youzan", FaultConfig(rate_limit=0.9, seed=1))
    codes = [youzan_sold(entry, now - timedelta(hours=1), now, 1).get("code") for _ in range(6)]
    assert 20001 in codes
    sandbox.set_faults("youzan", FaultConfig())
    assert youzan_sold(entry, now - timedelta(hours=1), now, 1)["success"] is True


def test_a_scenario_file_publishes_exactly_its_orders(tmp_path: Path) -> None:
    end = datetime.now(UTC) - timedelta(hours=1)
    orders = [
        o for ch in ("taobao", "pdd", "youzan", "kuaishou") for o in sample_orders(ch, 5, end=end)
    ]
    lines = [o.model_dump_json() for o in orders]
    lines.insert(3, '{"channel": "taobao", "platform_order_no": ""}')  # line 4: rejected
    path = tmp_path / "scenario.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Sandbox(tmp_path / "home", seed=1, orders=50, days=1, scenario=path) as sb:
        truth = sb.truth()["orders"]
        assert sorted((o["channel"], o["platform_order_no"]) for o in truth) == sorted(
            (o.channel, o.platform_order_no) for o in orders
        )
        assert [e.line_no for e in sb.scenario_errors] == [4]
        entry = sb.endpoints["channels"]["youzan"]
        now = datetime.now(UTC)
        data = youzan_sold(entry, now - timedelta(days=3), now, 1)["data"]
        assert data["total_results"] == 5


def test_live_mode_publishes_new_orders_and_pushes_them_signed(tmp_path: Path) -> None:
    received: list[tuple[str, dict, bytes]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(
            (request.path_params["channel"], dict(request.headers), await request.body())
        )
        return JSONResponse({"code": 0, "msg": "success"})

    receiver = serve_app(Starlette(routes=[Route("/webhooks/{channel}", hook, methods=["POST"])]))
    try:
        with Sandbox(
            tmp_path / "home",
            seed=2,
            orders=200,
            days=1,
            live=True,
            webhook_url=f"{receiver.base_url}/webhooks",
            live_interval=0.3,
        ) as sb:
            published = len(sb.truth()["orders"])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (
                len(received) < 2 or len(sb.truth()["orders"]) <= published
            ):
                time.sleep(0.2)
            grown = len(sb.truth()["orders"])
            on_disk = json.loads((sb.home / "sandbox" / "truth.json").read_text())
            creds = sb.endpoints["channels"]
    finally:
        receiver.stop()
    assert grown > published, "live mode published new orders"
    assert len(on_disk["orders"]) > published, "truth.json follows live orders"
    assert received, "changes were pushed"
    for channel, headers, body in received:
        if channel == "douyin":
            c = creds["douyin"]
            expected = hashlib.md5(
                (c["app_key"] + body.decode() + c["app_secret"]).encode()
            ).hexdigest()
            assert headers["event-sign"] == expected
        elif channel == "youzan":
            c = creds["youzan"]
            expected = hashlib.md5(
                (c["client_id"] + body.decode() + c["client_secret"]).encode()
            ).hexdigest()
            assert headers["event-sign"] == expected


def test_erp_hook_publishes_the_h5mall_database(pg, tmp_path: Path) -> None:
    with Sandbox(
        tmp_path / "home", seed=4, orders=200, days=1, erp_admin_url=pg.url(dbname="postgres")
    ) as sb:
        erp = json.loads((sb.home / "sandbox.json").read_text())["erp"]
    assert "url" in erp and "error" not in erp


def test_a_large_world_is_streamed_into_compact_gateways(tmp_path: Path, monkeypatch) -> None:
    import sandbox.server as server

    monkeypatch.setattr(server, "LARGE_WORLD", 100)
    with Sandbox(tmp_path / "home", seed=6, orders=500, days=1) as sb:
        assert sb.large and all(g.store.compact for g in sb.gateways.values())
        document = sb.endpoints
        truth = sb.truth()["orders"]
        entry = document["channels"]["youzan"]
        now = datetime.now(UTC)
        data = youzan_sold(entry, now - timedelta(days=2), now, 1)["data"]
    assert document["generated"]["marketplaces_only"] is True
    assert {o["channel"] for o in truth} <= set(CONTRACT)
    assert sum(len(g.store) for g in sb.gateways.values()) == len(truth) > 0
    served = {e["full_order_info"]["order_info"]["tid"] for e in data["full_order_info_list"]}
    assert served == {o["platform_order_no"] for o in truth if o["channel"] == "youzan"}


def test_full_world_keeps_every_channel_above_the_large_world_size(
    pg, tmp_path: Path, monkeypatch
) -> None:
    import sandbox.server as server

    monkeypatch.setattr(server, "LARGE_WORLD", 100)
    with Sandbox(
        tmp_path / "home", seed=6, orders=500, days=1, full_world=True,
        erp_admin_url=pg.url(dbname="postgres"),
    ) as sb:  # fmt: skip
        document = sb.endpoints
        truth = sb.truth()["orders"]
        merchant_records = len(getattr(sb.world, "shipments", []) or [])
    assert document["generated"]["marketplaces_only"] is False
    assert {o["channel"] for o in truth} - set(MARKETPLACES)  # SFTP, POS, ERP channels too
    assert len(truth) == 500 and merchant_records > 0


def test_pos_files_land_in_the_drop_folder_the_pos_connector_watches(sandbox: Sandbox) -> None:
    folder = Path(sandbox.endpoints["pos"]["folder"])
    assert folder == sandbox.home / "drop" / "pos"
    files = sorted(folder.glob("pos_*.csv"))
    pos_orders = {o.platform_order_no for o in sandbox.world.orders if o.channel == "pos"}
    text = "".join(f.read_text(encoding="utf-8-sig") for f in files)
    assert files and all(no in text for no in pos_orders)
