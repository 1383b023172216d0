"""Order pulse: a channel silent past its quiet time while the others flow alerts once per
channel; steady channels, a small channel's natural gaps and a quiet night do not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from kernel.config import ConfigError
from quality import order_pulse
from tests.quality.crafted_marts import create

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PARAMS = {"default_quiet_minutes": 60, "quiet_minutes": {"pos": 720}}


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c, "intermediate.int_orders")
        yield c


def orders(conn: psycopg.Connection, channel: str, every_min: float, hours: float,
           skip: tuple[float, float] | None = None) -> None:  # fmt: skip
    """Orders every `every_min` minutes over the last `hours`, none `skip` (minutes ago) apart."""
    lo, hi = skip or (-1, -1)
    conn.execute(
        """
        insert into intermediate.int_orders (channel, platform_order_no, created_at)
        select %(c)s, %(c)s || '-' || g, %(now)s - g * %(every)s * interval '1 minute'
        from generate_series(1, (%(hours)s * 60 / %(every)s)::int) as g
        where g * %(every)s not between %(lo)s and %(hi)s
        """,
        {"c": channel, "now": NOW, "every": every_min, "hours": hours, "lo": lo, "hi": hi},
    )


def test_a_channel_silent_now_while_others_flow_alerts(conn: psycopg.Connection) -> None:
    orders(conn, "taobao", 1, 6)
    orders(conn, "jd", 2, 6)
    orders(conn, "pdd", 2, 6, skip=(0, 95))  # nothing in the last 95 minutes
    alerts = order_pulse.detect(conn, PARAMS, NOW)
    assert [a.dedup_key for a in alerts] == ["channel=pdd"]
    facts = alerts[0].facts
    assert facts["still_silent"] is True and facts["silent_until"] is None
    assert 95 <= facts["silent_minutes"] <= 97
    assert facts["other_channels_orders"] > 100
    assert "pdd silent" in alerts[0].subject


def test_a_past_silence_alerts_until_the_cursor_passes_it(conn: psycopg.Connection) -> None:
    orders(conn, "taobao", 1, 6)
    orders(conn, "jd", 2, 6)
    orders(conn, "pdd", 2, 6, skip=(120, 240))  # silent from 4 h to 2 h ago
    [alert] = order_pulse.detect(conn, PARAMS, NOW, since=NOW - timedelta(hours=3))
    assert alert.facts["still_silent"] is False and alert.facts["silent_minutes"] == 124
    assert order_pulse.detect(conn, PARAMS, NOW, since=NOW - timedelta(minutes=100)) == []


def test_steady_channels_small_channels_and_quiet_nights_stay_quiet(
    conn: psycopg.Connection,
) -> None:
    orders(conn, "taobao", 1, 6)
    orders(conn, "jd", 2, 6)
    orders(conn, "pos", 240, 6)  # a till: an order every 4 hours, within its 12 h quiet time
    orders(conn, "youzan", 90, 6)  # small: 1.5 h gaps, but ~2 orders expected in one, not 8
    assert order_pulse.detect(conn, PARAMS, NOW) == []
    # a quiet night: every channel slow, the others' few orders say nothing about one channel
    conn.execute("truncate intermediate.int_orders")
    for channel in ("taobao", "jd", "pdd"):
        orders(conn, channel, 80, 6)
    assert order_pulse.detect(conn, PARAMS, NOW) == []


def test_a_wrong_threshold_names_the_file_the_key_and_the_fix(conn: psycopg.Connection) -> None:
    with pytest.raises(ConfigError) as err:
        order_pulse.detect(conn, {"default_quiet_minutes": -5}, NOW)
    msg = str(err.value)
    assert "config/alerts.yaml: rules.order_pulse.params.default_quiet_minutes" in msg
    assert "-5" in msg and "fix the value" in msg
    with pytest.raises(ConfigError, match="rules.order_pulse.params.quiet_minute: Extra"):
        order_pulse.detect(conn, {"quiet_minute": {"pdd": 5}}, NOW)
