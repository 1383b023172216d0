"""SIGKILL of a decision run: a real process routing two hundred paid orders is killed while
its transaction is open (held at the write by a lock the test takes, so the kill lands after the
decisions were computed and before they were stored, every time). Nothing of it is stored, its
advisory lock dies with it, and the next run decides every order exactly once; a run after that
has nothing left to decide."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.routing_rules import load_routing_rules
from fulfillment.routing_store import decide_routing
from tests.fulfillment.test_merged_routing import INPUT_TABLES  # the inputs routing reads

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
ORDERS = 200
APP = "faults-routing-run"
# one routing run, as the fulfillment asset calls it; the URL comes from the environment
RUN = f"""
import os
from datetime import datetime
import psycopg
from fulfillment.routing_rules import load_routing_rules
from fulfillment.routing_store import decide_routing
with psycopg.connect(os.environ["FAULTS_DB_URL"], application_name="{APP}") as conn:
    decide_routing(conn, load_routing_rules(), datetime.fromisoformat("{NOW.isoformat()}"))
"""
# paid orders to four cities, one to three lines each over 20 SKUs that every warehouse stocks
INPUTS = """
with places(k, province, city, district, lat, lon) as (values
    (0, '上海市', '上海市', '浦东新区', 31.23, 121.47),
    (1, '广东省', '广州市', '天河区', 23.13, 113.36),
    (2, '北京市', '北京市', '朝阳区', 39.92, 116.44),
    (3, '四川省', '成都市', '武侯区', 30.64, 104.04)),
orders as (
    select 'taobao' as channel, 'K' || lpad(i::text, 5, '0') as no, i, p.*
    from generate_series(1, %(n)s) as i join places p on p.k = i %% 4),
awaiting as (
    insert into intermediate.int_orders_awaiting_allocation
    select channel, no, province, city, district, 200, 8,
           %(now)s::timestamptz - make_interval(mins => i), md5(no) from orders),
unified as (
    insert into intermediate.int_orders
    select channel, no, province, %(now)s::timestamptz - make_interval(mins => i) from orders),
geo as (
    insert into raw.address_geo select channel, no, 'h' || k, lat, lon from orders),
items as (
    insert into intermediate.int_order_items
    select channel, no, 'SKU-' || ((i + l) %% 20), 1 + l
    from orders cross join generate_series(0, 2) as l where l <= i %% 3)
insert into staging.stg_merchant_systems__wms_stock
select w, 'SKU-' || s, 100000, 100000, 10, %(now)s
from unnest(array['WH-EAST', 'WH-SOUTH', 'WH-NORTH', 'WH-WEST']) as w,
     generate_series(0, 19) as s
"""


def _blocked_run(conn: psycopg.Connection, seconds: float = 60) -> int:
    """The run's backend pid once it waits, inside its transaction, to store its decisions."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = conn.execute(
            "select pid from pg_stat_activity where application_name = %s"
            " and wait_event_type = 'Lock' and xact_start is not null"
            " and query like '%%delete from ops.routing_decisions%%'",
            [APP],
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.02)
    raise AssertionError("the routing run never reached its write")


@pytest.mark.slow  # about 6 s: a routing process started and killed, two runs in process
def test_sigkilled_decision_run_stores_nothing_and_the_next_run_decides_each_order_once(
    fresh_db,  # noqa: ANN001
) -> None:
    url = fresh_db.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(INPUT_TABLES)
        ensure_ops_tables(conn)
        conn.execute(INPUTS, {"n": ORDERS, "now": NOW})

        # reads pass, writes wait: the run computes its decisions, then blocks storing them
        holder = psycopg.connect(url)
        holder.execute("lock table ops.routing_decisions in share mode")
        env = {**os.environ, "FAULTS_DB_URL": url}
        run = subprocess.Popen(
            [sys.executable, "-c", RUN], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            backend = _blocked_run(conn)
            run.send_signal(signal.SIGKILL)
            assert run.wait(timeout=10) == -signal.SIGKILL
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            holder.rollback()
            holder.close()
        # the orphaned backend finds its client gone and rolls back
        deadline = time.monotonic() + 30
        while conn.execute("select 1 from pg_stat_activity where pid = %s", [backend]).fetchone():
            assert time.monotonic() < deadline, "the killed run's transaction outlived it"
            time.sleep(0.02)
        assert conn.execute("select count(*) from ops.routing_decisions").fetchone()[0] == 0
        assert conn.execute("select count(*) from ops.alerts").fetchone()[0] == 0

        # the next run is not blocked by the dead run's advisory lock and decides every order
        rules = load_routing_rules()
        report = decide_routing(conn, rules, NOW)
        assert report.candidates == report.decided == ORDERS
        per_order = conn.execute(
            "select count(distinct (channel, platform_order_no)), count(*) filter (where part = 0)"
            " from ops.routing_decisions"
        ).fetchone()
        assert per_order == (ORDERS, ORDERS)  # every order once (split parts besides part 0)
        assert decide_routing(conn, rules, NOW).candidates == 0  # nothing left, nothing twice
