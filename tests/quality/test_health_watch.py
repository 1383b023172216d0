"""OHI watch: a channel whose latest Order Health Index is under 80 alerts with its weakest
sub-scores and a chart; healthy channels, stale days and a missing table stay quiet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from quality import health_watch
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        yield c


def day(channel: str, days_ago: int, ohi: float, consistency: float = 95) -> dict:
    return {"day": TODAY - timedelta(days=days_ago), "channel": channel, "ohi": ohi,
            "timeliness": 97, "completeness": 99, "consistency": consistency, "accuracy": 93,
            "controllability": 90, "orders": 100}  # fmt: skip


def test_a_channel_under_the_threshold_alerts_with_weakest_sub_scores(
    conn: psycopg.Connection,
) -> None:
    assert health_watch.detect(conn, {"ohi_threshold": 80}, NOW) == []  # no table yet
    create(conn, "marts.order_health_daily")
    rows = [day("pdd", k, 92) for k in range(3, 0, -1)] + [day("pdd", 0, 71.4, consistency=40)]
    rows += [day("jd", k, 93) for k in range(4)]
    rows += [day("pos", 5, 50)]  # stale: nothing recent to judge
    insert(conn, "marts.order_health_daily", rows)
    [alert] = health_watch.detect(conn, {"ohi_threshold": 80}, NOW)
    assert alert.dedup_key == "channel=pdd"
    assert alert.facts["ohi"] == 71.4 and alert.facts["day"] == "2026-11-20"
    assert alert.facts["sub_scores"]["consistency"] == 40.0 and "orders" not in alert.facts
    assert "weakest: consistency, controllability" in alert.subject
    assert alert.chart.series["OHI"] == [92, 92, 92, 71.4] and alert.chart.threshold == 80


def test_healthy_channels_stay_quiet(conn: psycopg.Connection) -> None:
    create(conn, "marts.order_health_daily")
    insert(conn, "marts.order_health_daily", [day(c, 0, 91) for c in ("jd", "pdd", "taobao")])
    assert health_watch.detect(conn, {"ohi_threshold": 80}, NOW) == []
