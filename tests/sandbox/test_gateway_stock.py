"""The stock the sandbox's platforms display: drift within ±2 on a few SKUs, the planted
`stock_diff` incidents 5..9 units off on one platform, none in a calm world; the ledger's
freeze and pause calls are all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.gateways.stock import (
    MIN_SELLABLE,
    STOCK_DIFF,
    PlatformStock,
    UnknownSku,
    plan_stock_drift,
)

AT = datetime(2026, 12, 4, tzinfo=UTC)
CHANNELS = ("taobao", "jd", "douyin", "pdd", "kuaishou", "youzan")
SELLABLE = {f"S{i:03d}": (i * 7) % 60 for i in range(300)}


def test_drift_and_planted_differences() -> None:
    drift, incidents = plan_stock_drift(7, SELLABLE, CHANNELS, calm=False, plant=True, at=AT)
    assert (drift, incidents) == plan_stock_drift(
        7, SELLABLE, CHANNELS, calm=False, plant=True, at=AT
    )  # seeded
    assert len(incidents) == 2 and {i["kind"] for i in incidents} == {STOCK_DIFF}
    planted = {(i["channel"], i["sku"]): i["diff"] for i in incidents}
    for (channel, sku), diff in planted.items():
        assert 5 <= abs(diff) <= 9 and SELLABLE[sku] >= MIN_SELLABLE
        assert drift[channel][sku] == diff
        assert all(sku not in drift[c] for c in CHANNELS if c != channel)
    noise = [u for c in CHANNELS for s, u in drift[c].items() if (c, s) not in planted]
    assert noise and all(1 <= abs(u) <= 2 for u in noise)

    small, none = plan_stock_drift(7, SELLABLE, CHANNELS, calm=False, plant=False, at=AT)
    assert none == [] and any(small.values())
    assert plan_stock_drift(7, SELLABLE, CHANNELS, calm=True, plant=True, at=AT) == (
        dict.fromkeys(CHANNELS, {}),
        [],
    )


def test_ledger_shows_total_less_withheld_and_changes_all_or_nothing() -> None:
    stock = PlatformStock()
    stock.load({"A": 10, "B": 3}, {"A": 4}, {"B": -5})
    assert [(r.sku, r.sellable, r.withheld, r.paused) for r in stock.page(0, 10)[0]] == [
        ("A", 6, 4, False),
        ("B", 0, 0, False),  # never below zero
    ]
    with pytest.raises(UnknownSku):
        stock.set_withheld({"A": 1, "X": 2})
    with pytest.raises(UnknownSku):
        stock.set_paused({"B": True, "X": True})
    assert [(r.withheld, r.paused) for r in stock.rows(["A", "B"])] == [(4, False), (0, False)]
    stock.set_withheld({"A": 1})
    stock.set_paused({"B": True})
    assert [(r.sellable, r.paused) for r in stock.rows(["A", "B"])] == [(9, False), (0, True)]
