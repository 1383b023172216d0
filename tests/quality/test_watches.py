"""run_watches: one sweep of every watch records each finding once in ops.alerts; a second
sweep within the cool-down records nothing; watches whose tables are missing are left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from quality.watches import WATCHES, run_watches
from tests.quality.crafted_marts import create

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_a_sweep_records_findings_once_and_skips_missing_tables(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        create(conn, "intermediate.int_orders")  # only the order pulse can look
        conn.execute(
            "insert into intermediate.int_orders (channel, platform_order_no, created_at) "
            "select c, c || g, %(now)s - g * interval '1 minute' "
            "from unnest(array['taobao', 'jd', 'pdd']) as c, generate_series(1, 360) as g "
            "where not (c = 'pdd' and g < 90)",
            {"now": NOW},
        )
        results = {r.rule: r for r in run_watches(conn, NOW)}
        # ops tables exist (oversold, pause-sale), a missing OHI mart is nothing to check;
        # the watches reading other marts are left out
        assert set(results) == {
            "order_pulse",
            "inventory_oversold",
            "stock_below_safety",
            "stock_mismatch",
            "health_index",
        }
        assert (results["order_pulse"].found, results["order_pulse"].raised) == (1, 1)
        again = {r.rule: r for r in run_watches(conn, NOW + timedelta(minutes=5), NOW)}
        assert (again["order_pulse"].found, again["order_pulse"].raised) == (1, 0)
        keys = conn.execute("select rule, dedup_key from ops.alerts").fetchall()
        assert keys == [("order_pulse", "channel=pdd")]
        assert len(WATCHES) == 10
