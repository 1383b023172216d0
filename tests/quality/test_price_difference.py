"""Price difference: a SKU whose price on one channel is more than 0.8 % above the cheapest
channel's alerts once with every channel's price; within 0.8 % or on one channel only, not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from quality import price_difference
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c, "marts.fct_cross_platform_price_diff")
        yield c


def prices(sku: str, by_channel: dict[str, float]) -> list[dict]:
    cheapest = min(by_channel.values())
    return [
        {"sku": sku, "channel": channel, "lines": 10, "units": 12, "avg_unit_price": price,
         "cheapest_channel_price": cheapest, "channels_selling": len(by_channel),
         "price_diff_rate": round((price - cheapest) / cheapest, 4)}
        for channel, price in by_channel.items()
    ]  # fmt: skip


def test_a_sku_dearer_on_one_channel_alerts_with_every_channels_price(
    conn: psycopg.Connection,
) -> None:
    rows = prices("SKU1", {"taobao": 100.0, "jd": 100.5, "pdd": 102.0})  # pdd +2 %
    rows += prices("SKU2", {"taobao": 50.0, "jd": 50.35})  # +0.7 %: within
    rows += prices("SKU3", {"douyin": 80.0})  # one channel: nothing to compare
    insert(conn, "marts.fct_cross_platform_price_diff", rows)
    [alert] = price_difference.detect(conn, {"share_threshold": 0.008}, NOW)
    assert alert.dedup_key == "sku=SKU1"
    assert alert.facts["dearest_channel"] == "pdd" and alert.facts["cheapest_channel"] == "taobao"
    assert alert.facts["price_diff_rate"] == 0.02 and alert.facts["channels_above"] == ["pdd"]
    assert [r["channel"] for r in alert.table] == ["pdd", "jd", "taobao"]
    assert "pdd sells 2.0% above taobao" in alert.subject


def test_prices_within_the_threshold_stay_quiet(conn: psycopg.Connection) -> None:
    rows = prices("SKU1", {"taobao": 100.0, "jd": 100.8, "pdd": 100.2})  # at most +0.8 %
    insert(conn, "marts.fct_cross_platform_price_diff", rows)
    assert price_difference.detect(conn, {"share_threshold": 0.008}, NOW) == []
