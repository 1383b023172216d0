"""Return interception: a channel whose parcels cancelled after shipping were stopped less
than 90 % of the time (last 7 days) alerts with the carriers' figures; 90 % or more, a
refund or return asked after delivery, an old week or too few attempts do not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from quality import return_interception
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PARAMS = {"success_threshold": 0.90}


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c, "marts.order_holographic")
        yield c


def attempts(channel: str, carrier: str, ok: int, failed: int, days_ago: float = 1,
             kind: str = "refund", asked_after_delivery: bool = False) -> list[dict]:  # fmt: skip
    """`ok` parcels stopped and sent back, `failed` delivered with the after-sale already on
    the order (or, `asked_after_delivery`, recorded hours after the delivery)."""
    at = NOW - timedelta(days=days_ago)
    delivered = at - timedelta(hours=5)
    after = timedelta(hours=6) if asked_after_delivery else timedelta(0)
    return [
        {"channel": channel, "platform_order_no": f"{channel}-{carrier}-{kind}-{i}",
         "carrier": carrier, "shipped_at": at - timedelta(days=1), "after_sale_kind": kind,
         "after_sale_at": at, "unified_status": "after_sale",
         "actual_delivery_at": None if i < ok else delivered,
         "modified_at": at if i < ok else delivered + after,
         "last_track_event": "returning" if i < ok else "delivered"}
        for i in range(ok + failed)
    ]  # fmt: skip


def test_a_channel_failing_interceptions_alerts_with_carriers(conn: psycopg.Connection) -> None:
    rows = attempts("pdd", "zto", ok=5, failed=3) + attempts("pdd", "sf", ok=4, failed=0)
    rows += attempts("pdd", "sto", ok=0, failed=1, kind="return")  # JD-style 退款 in transit
    rows += attempts("jd", "sf", ok=9, failed=1)  # 90 %: not under
    rows += attempts("jd", "zto", ok=0, failed=5, kind="return", asked_after_delivery=True)
    rows += attempts("jd", "yto", ok=0, failed=5, asked_after_delivery=True)  # refund only
    rows += attempts("jd", "sto", ok=0, failed=5, kind="reject")  # refused at the door
    rows += attempts("taobao", "yto", ok=0, failed=6, days_ago=9)  # outside the week
    rows += attempts("douyin", "yto", ok=1, failed=3)  # 4 attempts: too few to judge
    insert(conn, "marts.order_holographic", rows)
    [alert] = return_interception.detect(conn, PARAMS, NOW)
    assert alert.dedup_key == "channel=pdd"
    assert alert.facts["attempts"] == 13 and alert.facts["failed"] == 4
    assert alert.facts["success_rate"] == round(9 / 13, 4)
    assert alert.table == [
        {"carrier": "zto", "attempts": 8, "succeeded": 5, "success_rate": 0.625},
        {"carrier": "sf", "attempts": 4, "succeeded": 4, "success_rate": 1.0},
        {"carrier": "sto", "attempts": 1, "succeeded": 0, "success_rate": 0.0},
    ]


def test_successful_interceptions_stay_quiet(conn: psycopg.Connection) -> None:
    insert(conn, "marts.order_holographic", attempts("pdd", "zto", ok=19, failed=1))
    assert return_interception.detect(conn, PARAMS, NOW) == []
