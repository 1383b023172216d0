"""Properties of the raw loader on a real PostgreSQL (hypothesis): whatever versions of some
orders arrive, in whatever batches and order, raw ends holding the newest version of each; a
load repeated changes nothing; the cursor never moves back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.raw_loader import CursorUpdate, RawOrder, load_orders, read_cursor
from connectors.raw_schema import ensure_raw_tables
from kernel.database import PgConn
from tests.databases import drop_database, new_database

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
NOW = T0 + timedelta(days=1)

# (order, minute of its modified time, status): unique per (order, minute), so "newest" is
# well defined (at one modified time a changed content wins by load order: tested elsewhere)
versions = st.lists(
    st.tuples(
        st.integers(0, 5), st.integers(0, 30), st.sampled_from(["paid", "shipped", "closed"])
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda v: (v[0], v[1]),
)


@pytest.fixture(scope="module")
def warehouse(pg: PgConn) -> Iterator[PgConn]:
    db = new_database(pg, "prop_")
    with psycopg.connect(db.url()) as conn:
        ensure_raw_tables(conn, ["jd"])
    yield db
    drop_database(pg, db)


def _raw(version: tuple[int, int, str]) -> RawOrder:
    order, minute, status = version
    at = T0 + timedelta(minutes=minute)
    return RawOrder(str(order), at, {"orderId": str(order), "status": status, "minute": minute})


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI must not flake
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(versions, st.randoms(use_true_random=False), st.integers(1, 5))
def test_raw_ends_with_the_newest_version_whatever_the_batches(
    warehouse: PgConn, vs: list, rnd, batches: int
) -> None:
    shuffled = list(vs)
    rnd.shuffle(shuffled)
    size = max(1, len(shuffled) // batches)
    chunks = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("truncate raw.jd_orders")
        conn.execute("delete from raw.ingest_cursors where source = 'prop'")
        conn.commit()
        highest = None
        for chunk in chunks:
            moved = max(T0 + timedelta(minutes=m) for _, m, _ in chunk)
            load_orders(conn, "jd", [_raw(v) for v in chunk], run_id="prop",
                        cursor=CursorUpdate("prop", moved), now=NOW)  # fmt: skip
            highest = moved if highest is None else max(highest, moved)
        rows = dict(conn.execute("select platform_order_no, payload->>'minute' from raw.jd_orders"))
        newest = {}
        for order, minute, _ in vs:
            newest[str(order)] = max(newest.get(str(order), -1), minute)
        assert {k: int(v) for k, v in rows.items()} == newest
        # a repeated load changes nothing
        before = conn.execute("select platform_order_no, content_hash, loaded_at "
                              "from raw.jd_orders order by 1").fetchall()  # fmt: skip
        again = load_orders(conn, "jd", [_raw(v) for v in vs], run_id="again", now=NOW)
        assert (again.inserted, again.updated) == (0, 0)
        after = conn.execute("select platform_order_no, content_hash, loaded_at "
                             "from raw.jd_orders order by 1").fetchall()  # fmt: skip
        assert after == before
        # the cursor is the latest it was moved to, never an earlier batch's
        assert read_cursor(conn, "prop") == highest
