"""A small hand-built routing world for the tests: five warehouses (Suzhou, Hefei, Guangzhou,
Chengdu and a Hangzhou front warehouse), two carriers, receivers in known cities."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from fulfillment.routing import RoutingResult, route
from fulfillment.routing_rules import RoutingRules

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# receiver city -> (province, latitude, longitude)
PLACES = {
    "上海": ("上海市", 31.23, 121.47),
    "苏州": ("江苏省", 31.30, 120.60),
    "杭州": ("浙江省", 30.27, 120.16),
    "广州": ("广东省", 23.13, 113.30),
    "北京": ("北京市", 39.90, 116.40),
    "成都": ("四川省", 30.66, 104.06),
    "乌鲁木齐": ("新疆维吾尔自治区", 43.83, 87.62),
}
MAINLAND = ["上海市", "江苏省", "浙江省", "安徽省", "广东省", "北京市", "四川省"]
SKUS = ("A", "B", "C", "HOT1", "HOT2")
HOT = ("HOT1", "HOT2")
WAREHOUSES = ("SZ", "HF", "GZ", "CD", "HZF")

BASE: dict[str, Any] = {
    "version": "test-1",
    "warehouses": [
        {
            "id": "SZ",
            "name": "苏州仓",
            "latitude": 31.30,
            "longitude": 120.58,
            "daily_capacity": 100,
        },
        {
            "id": "HF",
            "name": "合肥仓",
            "latitude": 31.82,
            "longitude": 117.23,
            "daily_capacity": 100,
        },
        {
            "id": "GZ",
            "name": "广州仓",
            "latitude": 23.13,
            "longitude": 113.26,
            "daily_capacity": 100,
        },
        {
            "id": "CD",
            "name": "成都仓",
            "latitude": 30.57,
            "longitude": 104.07,
            "daily_capacity": 100,
        },
        {
            "id": "HZF",
            "name": "杭州前置仓",
            "latitude": 30.26,
            "longitude": 120.13,
            "daily_capacity": 100,
            "is_front": True,
            "is_national": False,
        },
    ],
    "hot_skus": {"listed": list(HOT)},
    "carriers": [
        {
            "id": "SF",
            "covers": MAINLAND,
            "on_time_rate": 0.95,
            "transit_days": [1, 2, 3],
            "freight": {"first_kg": [10, 12, 15], "extra_kg": [2, 4, 6]},
        },
        {
            "id": "EMS",
            "covers": "all",
            "on_time_rate": 0.85,
            "transit_days": [2, 3, 4],
            "remote_transit_days": 6,
            "freight": {"first_kg": [8, 10, 14], "extra_kg": [2, 4, 8], "remote_surcharge": 15},
        },
    ],
    "remote_regions": ["新疆维吾尔自治区", "西藏自治区", "青海省"],
}


def rules_dict(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced, and `section__key=value` for one nested key."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if "__" in key:
            section, sub = key.split("__", 1)
            data.setdefault(section, {})[sub] = value
        else:
            data[key] = value
    return data


def make_rules(**changes: Any) -> RoutingRules:
    return RoutingRules.model_validate(rules_dict(**changes))


def with_warehouse(rules: RoutingRules, wid: str, **fields: Any) -> RoutingRules:
    whs = [w.model_copy(update=fields) if w.id == wid else w for w in rules.warehouses]
    return rules.model_copy(update={"warehouses": whs})


def order(
    no: str,
    place: str,
    items: dict[str, int],
    *,
    goods: float = 200.0,
    freight: float = 0.0,
    paid_min: float = 0.0,
    channel: str = "taobao",
) -> tuple[dict, list[dict]]:
    """One order (and its lines) to a receiver in `place`, paid `paid_min` minutes after
    an hour before NOW."""
    province, lat, lon = PLACES[place]
    row = {
        "channel": channel,
        "platform_order_no": no,
        "province": province,
        "city": place,
        "district": "",
        "latitude": lat,
        "longitude": lon,
        "goods_value": goods,
        "freight": freight,
        "paid_at": NOW - timedelta(hours=1) + timedelta(minutes=paid_min),
    }
    lines = [
        {"channel": channel, "platform_order_no": no, "sku": s, "qty": q} for s, q in items.items()
    ]
    return row, lines


def frames(*orders: tuple[dict, list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [o for o, _ in orders]
    lines = [line for _, ls in orders for line in ls]
    return pd.DataFrame(rows), pd.DataFrame(
        lines, columns=["channel", "platform_order_no", "sku", "qty"]
    )


def stock(levels: dict[str, dict[str, int]] | None = None, safety: int = 10) -> pd.DataFrame:
    """Default: every national warehouse has 100 of every SKU, the front warehouse 50 of the
    hot ones; `levels` overrides whole warehouses (warehouse -> {sku: available})."""
    base = {w: {s: 100 for s in SKUS} for w in WAREHOUSES if w != "HZF"}
    base["HZF"] = {s: 50 for s in HOT}
    base.update(levels or {})
    rows = [
        {"warehouse_id": w, "sku": s, "available": q, "safety_threshold": safety}
        for w, skus in base.items()
        for s, q in skus.items()
    ]
    return pd.DataFrame(rows)


def health(
    stale_minutes: dict[str, float] | None = None, failures: dict[str, int] | None = None
) -> pd.DataFrame:
    """Every warehouse synced a minute ago unless `stale_minutes` says otherwise."""
    stale_minutes, failures = stale_minutes or {}, failures or {}
    return pd.DataFrame(
        {
            "warehouse_id": list(WAREHOUSES),
            "last_stock_sync_at": [
                NOW - timedelta(minutes=stale_minutes.get(w, 1)) for w in WAREHOUSES
            ],
            "consecutive_shipping_failures": [failures.get(w, 0) for w in WAREHOUSES],
        }
    )


def run(
    *orders: tuple[dict, list[dict]],
    rules: RoutingRules | None = None,
    stock_frame: pd.DataFrame | None = None,
    health_frame: pd.DataFrame | None = None,
    **kwargs: Any,
) -> RoutingResult:
    o, lines = frames(*orders)
    return route(
        o,
        lines,
        stock() if stock_frame is None else stock_frame,
        health() if health_frame is None else health_frame,
        rules or make_rules(),
        NOW,
        **kwargs,
    )


def row(result: RoutingResult, no: str) -> pd.Series:
    d = result.decisions
    hit = d[d["platform_order_no"] == no]
    assert len(hit) == 1, f"{no}: {len(hit)} decision rows"
    return hit.iloc[0]
