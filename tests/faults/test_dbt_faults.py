"""Faults in the middle of a dbt build: PostgreSQL restarted, and the `dbt` process SIGKILLed.

Each starts from a warehouse built once (orders of the six marketplaces and the H5 mall,
`dbt build` of the models `fct_orders` needs) on a server of this module's own (the session's
is shared and must never be restarted), into which later versions of half the orders and new
orders are loaded. A build of the incremental chain from the parsed orders to the mart
(`int_orders+,+fct_orders`, the subset of the product's `dbt build` that the faults touch) is
then stopped at a known point: the test holds a lock that parks one model's merge, inside that
model's transaction, and the fault strikes while it waits. Nothing of the struck model is
visible afterwards (dbt builds in a transaction: no half-merged mart, no leftover `__dbt_tmp`
relation, its build register unchanged); the next build completes and the marts reconcile
with the truth: every order once in `int_orders` and `marts.fct_orders`, in its latest
version, and as a clean build writes it.

Cheap on purpose: a few hundred orders; one full dbt parse per module (the server's port and
the database name stay the same, so the faulted `dbt` processes reuse its partial parse); the
first build copied per test as a template database; the builds no fault strikes run in this
process on the parsed manifest.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from kernel.database import EmbeddedServer, PgConn
from orchestration.dbt.assets import RUN_EXCLUDES
from orchestration.resources import ensure_owned_tables
from sandbox.model import MARKETPLACES, Order
from tests.dbt.conftest import DBT, PROJECT
from tests.dbt.sample_raw import load_sample_orders, orders_for
from tests.faults.ground_truth import assert_marts_equal_truth

DB, TEMPLATE = "dbt_faults", "dbt_faults_template"
# the marketplaces and the H5 mall: the CSV channels' parsing would cost more than the builds
CHANNELS = [*MARKETPLACES, "h5mall"]
PER_CHANNEL, HELD_BACK = 40, 8  # per channel: 32 orders in the first build, 8 arrive later
# the first build only sets the scene: its data tests are left out (the later builds run theirs)
FIRST = ("build", "--select", "+fct_orders", "--exclude-resource-type", "test", "unit_test")
# what the product's dbt ops run (`dbt build` without unit tests), on the models the faults touch
LATER = ("build", *RUN_EXCLUDES, "--select", "int_orders+,+fct_orders", "--indirect-selection",
         "cautious")  # fmt: skip
# how psycopg2 reports the server going away (before or after it told the session why)
LOST = r"server closed the connection unexpectedly|terminating connection due to administrator"
# what a build left behind if its transaction did not roll back
LEFTOVERS = """
select n.nspname || '.' || c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relname like '%%dbt_tmp%%' or c.relname like '%%dbt_backup%%'
"""


def _advance(order: Order) -> Order:
    """The order one step further along its lifecycle (a late update from the platform)."""
    step = {(): "pay", ("pay",): "ship", ("pay", "ship"): "deliver"}.get(
        tuple(e.type for e in order.events)
    )
    if step is None:
        return order
    data = order.model_dump()
    data["events"] = [*data["events"], {"at": order.modified_at + timedelta(hours=1), "type": step}]
    return Order.model_validate(data)


class Dbt:
    """`dbt` against the module's warehouse: the builds that set the scene or recover run in
    this process on a manifest parsed once (a `dbt` process costs seconds of start-up and
    parse loading each time); the builds a fault strikes are `dbt` processes, as Dagster
    runs them, reusing the partial parse the first parse saved."""

    def __init__(self, conn: PgConn, dbt_dir: Path) -> None:
        self.conn = conn
        self.env = {**conn.env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        self.dir = dbt_dir
        self.paths = ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                      "--target-path", str(dbt_dir / "target")]  # fmt: skip
        self.manifest = self._invoke(None, "parse")

    def _invoke(self, manifest: object, *args: str):  # noqa: ANN202 (dbt's result)
        from dbt.cli.main import dbtRunner  # here: importing it at collection touches logging

        with pytest.MonkeyPatch.context() as env:
            for name, value in self.env.items():
                env.setenv(name, value)
            env.setenv("DBT_LOG_PATH", str(self.dir / "logs"))
            result = dbtRunner(manifest=manifest).invoke([*args, *self.paths])
        if not result.success:
            failed = [
                f"{r.node.name}: {r.message}"
                for r in getattr(result.result, "results", [])
                if r.status in ("error", "fail")
            ]
            pytest.fail(f"dbt {' '.join(args)} failed: {result.exception or failed}")
        return result.result

    def build(self, *args: str) -> None:
        """`dbt <args>` in this process; fails the test when dbt fails."""
        with psycopg.connect(self.conn.url()) as db:
            ensure_owned_tables(db)  # as every entry point does before dbt
        self._invoke(self.manifest, *args)

    def start(self, log: Path, *args: str) -> subprocess.Popen:
        """`dbt <args>` as a process of its own (own process group), its output in `log`."""
        command = [str(DBT), *args, *self.paths]
        env = {**os.environ, **self.env, "DBT_LOG_PATH": str(self.dir / "logs")}
        with log.open("w") as out:
            return subprocess.Popen(
                command, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """This module's PostgreSQL: restarted by a test, so never the session's."""
    server = EmbeddedServer(tmp_path_factory.mktemp("dbtfaults_pg") / "pgdata")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dbt(server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    """dbt for the module's database name on its server: one parse serves every build."""
    return Dbt(server.conn(DB), tmp_path_factory.mktemp("dbtfaults_dbt"))


@pytest.fixture(scope="module")
def orders() -> tuple[list[Order], list[Order]]:
    """(the orders of the first build, what arrives later: half of them advanced a step and
    the held-back new orders)."""
    every = {c: orders_for([c], PER_CHANNEL) for c in CHANNELS}
    old = {c: mine[:-HELD_BACK] for c, mine in every.items()}
    first = [o for mine in old.values() for o in mine]
    # half of each channel's orders (every lifecycle keeps an order that stays as it was)
    moved = [o for mine in old.values() for k, o in enumerate(mine) if k % 4 in (1, 2)]
    later = [_advance(o) for o in moved] + [o for mine in every.values() for o in mine[-HELD_BACK:]]
    assert sum(a.events != b.events for a, b in zip(later, moved, strict=False)) >= 40
    return first, later


@pytest.fixture(scope="module")
def template(server: EmbeddedServer, dbt: Dbt, orders: tuple[list[Order], list[Order]]) -> str:
    """A database after one complete build of the first orders, the later orders loaded into
    raw since (not built yet), kept as the template of each test's warehouse."""
    first, later = orders
    with psycopg.connect(server.conn("postgres").url(), autocommit=True) as admin:
        admin.execute(f'create database "{DB}"')
        with psycopg.connect(server.conn(DB).url()) as db:
            load_sample_orders(db, first)
        dbt.build(*FIRST)
        with psycopg.connect(server.conn(DB).url()) as db:
            load_sample_orders(db, later)
        admin.execute(f'alter database "{DB}" rename to "{TEMPLATE}"')
    return TEMPLATE


@pytest.fixture()
def warehouse(server: EmbeddedServer, template: str) -> Iterator[PgConn]:
    """A copy of the template under the name every build of the module uses."""
    with psycopg.connect(server.conn("postgres").url(), autocommit=True) as admin:
        admin.execute(f'create database "{DB}" template "{template}"')
    yield server.conn(DB)
    with psycopg.connect(server.conn("postgres").url(), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{DB}" with (force)')


def _parked_merge(
    conn: psycopg.Connection, relation: str, proc: subprocess.Popen, log: Path
) -> int:
    """The backend pid of the build's merge into `relation` once it waits for the test's lock."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        row = conn.execute(
            "select pid from pg_stat_activity where wait_event_type = 'Lock'"
            " and xact_start is not null and query like %s",
            [f"%merge into%{relation}%"],
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError(
        f"the build never reached its merge into {relation} (exit {proc.poll()}):\n"
        + log.read_text()[-3000:]
    )


@contextlib.contextmanager
def _build_parked_at(
    conn: psycopg.Connection, url: str, dbt: Dbt, table: str, log: Path
) -> Iterator[tuple[subprocess.Popen, int]]:
    """A `dbt build` of LATER whose merge into `table` waits on the test's share lock: yields
    the build and the waiting backend's pid. Afterwards the build is killed if it still runs
    and the lock's connection closed (an orphaned merge then finds its client gone)."""
    holder = psycopg.connect(url)
    holder.execute(f"lock table {table} in share mode")
    build = dbt.start(log, *LATER)
    try:
        schema, name = table.split(".")
        yield build, _parked_merge(conn, f'"{schema}"."{name}"', build, log)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
        holder.close()


def _state(conn: psycopg.Connection, model: str) -> tuple[list[tuple], tuple | None]:
    """A model's rows (key, status, amounts) and its row in the build register."""
    rows = conn.execute(
        f"select channel, platform_order_no, platform_unified_status, paid_amount, _written_xid"
        f" from {model} order by 1, 2"
    ).fetchall()
    register = conn.execute(
        "select built_xid, previous_built_xid, invocation_id from intermediate.model_builds"
        " where model like %s",
        [f'%"{model.split(".")[1]}"'],
    ).fetchone()
    return rows, register


@pytest.mark.slow  # ~15 s: two dbt builds (and once per module ~25 s: the parse, the first build)
def test_postgres_restarted_mid_dbt_build_fails_cleanly_and_the_next_build_completes(
    server: EmbeddedServer,
    warehouse: PgConn,
    dbt: Dbt,
    orders: tuple[list[Order], list[Order]],
    tmp_path: Path,
) -> None:
    first, later = orders
    url = warehouse.url()
    with psycopg.connect(url, autocommit=True) as conn:
        before = {m: _state(conn, m) for m in ("intermediate.int_orders", "marts.fct_orders")}
        assert all(rows and register for rows, register in before.values())
        # the build parses the new rows, then waits to merge them into int_orders
        log = tmp_path / "build.log"
        with _build_parked_at(conn, url, dbt, "intermediate.int_orders", log) as (build, _):
            conn.close()
            server.stop()  # fast shutdown: every session is terminated, the merge with it
            server.start()
            code = build.wait(timeout=180)
    output = (tmp_path / "build.log").read_text()
    assert code in (1, 2), output[-3000:]  # dbt's "model failed" or "run failed"
    # dbt names the model and, in the next line, the lost connection; no traceback, no password
    assert "Database Error in model int_orders" in output, output[-3000:]
    assert re.search(LOST, output), output[-3000:]
    assert "Traceback" not in output and server.password not in output

    with psycopg.connect(url, autocommit=True) as conn:
        # nothing of the struck build is visible: both models and their registers as before
        for model, state in before.items():
            assert _state(conn, model) == state, model
        assert conn.execute(LEFTOVERS).fetchall() == []
        dbt.build(*LATER)  # the next build completes
        assert_marts_equal_truth(conn, first, later)


@pytest.mark.slow  # ~15 s: two dbt builds (and once per module ~25 s: the parse, the first build)
def test_sigkilled_dbt_build_leaves_no_half_merged_mart_and_the_next_build_completes(
    warehouse: PgConn,
    dbt: Dbt,
    orders: tuple[list[Order], list[Order]],
    tmp_path: Path,
) -> None:
    first, later = orders
    url = warehouse.url()
    with psycopg.connect(url, autocommit=True) as conn:
        before = _state(conn, "marts.fct_orders")
        assert before[0] and before[1]  # built, and registered
        # int_orders merges the new rows and commits; fct_orders then waits to merge them
        log = tmp_path / "build.log"
        with _build_parked_at(conn, url, dbt, "marts.fct_orders", log) as (build, backend):
            os.killpg(build.pid, signal.SIGKILL)  # dbt and anything it started
            assert build.wait(timeout=10) == -signal.SIGKILL
        # the lock released, the orphaned merge runs on, finds its client gone, rolls back
        deadline = time.monotonic() + 60
        while conn.execute("select 1 from pg_stat_activity where pid = %s", [backend]).fetchone():
            assert time.monotonic() < deadline, "the killed build's transaction outlived it"
            time.sleep(0.05)

        # the mart and its register as before the build; int_orders, built before the kill,
        # holds the new versions, to be picked up by fct_orders' next build
        assert _state(conn, "marts.fct_orders") == before
        assert conn.execute(LEFTOVERS).fetchall() == []
        stale = conn.execute(
            "select count(*) from intermediate.int_orders i join marts.fct_orders f"
            " using (channel, platform_order_no)"
            " where i.platform_unified_status <> f.platform_unified_status"
        ).fetchone()[0]
        assert stale > 0
        dbt.build(*LATER)  # the next build completes
        assert_marts_equal_truth(conn, first, later)


# the two dbt ops of the product side by side: the automation's marts build (second op, pool
# `dbt_marts`) and the decision worker's pass (first op, pool `dbt`) are free to overlap
MARTS = ("build", *RUN_EXCLUDES, "--select", "fct_orders", "fct_order_items",
         "--indirect-selection", "cautious")  # fmt: skip
INTERMEDIATE = ("run", "--select", "int_orders", "int_order_items")


@pytest.mark.slow  # ~20 s: three dbt builds and one dbt process
def test_a_marts_build_beside_an_intermediate_build_passes_its_tests_and_catches_up(
    warehouse: PgConn,
    dbt: Dbt,
    orders: tuple[list[Order], list[Order]],
    tmp_path: Path,
) -> None:
    """The interleaving the one shared pool used to rule out: `fct_orders` computed from the
    intermediate models as they were, then new orders merged into `int_orders` and
    `int_order_items` (a pass), then `fct_order_items` built from the newer intermediate rows
    against the older `fct_orders`. Its lines of orders `fct_orders` lacks wait for their order,
    so the marts build's data tests pass (`has_parent_order`), and the next build brings both
    to the truth."""
    first, later = orders
    url = warehouse.url()
    known = {(o.channel, o.platform_order_no) for o in first}
    new = {(o.channel, o.platform_order_no) for o in later} - known
    assert new
    # the lines' models as the product has them: built, the lines of the first orders in the mart
    dbt.build("build", "--select", "+int_order_items", "fct_order_items",
              "--exclude-resource-type", "test", "unit_test")  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        holder = psycopg.connect(url)
        holder.execute("lock table marts.fct_orders in share mode")
        log = tmp_path / "marts.log"
        build = dbt.start(log, *MARTS)
        try:
            # fct_orders computed its rows from int_orders as it was; it waits to merge them
            _parked_merge(conn, '"marts"."fct_orders"', build, log)
            # a pass: the new orders and their lines into the intermediate models, meanwhile
            dbt.build(*INTERMEDIATE)
            holder.close()  # the marts build goes on: fct_orders, then fct_order_items, tests
            code = build.wait(timeout=300)
        finally:
            if build.poll() is None:
                os.killpg(build.pid, signal.SIGKILL)
                build.wait()
            holder.close()
        assert code == 0, log.read_text()[-3000:]  # every data test of the marts build passed

        def orders_in(relation: str) -> set[tuple[str, str]]:
            rows = conn.execute(f"select distinct channel, platform_order_no from {relation}")
            return {tuple(row) for row in rows.fetchall()}

        # it did interleave: the pass's new orders are in int_orders, not in the marts yet
        assert new <= orders_in("intermediate.int_orders")
        assert not new & orders_in("marts.fct_orders")
        assert not new & orders_in("marts.fct_order_items")
        assert orders_in("marts.fct_order_items") <= orders_in("marts.fct_orders")

        dbt.build(*MARTS)  # the next marts build
        assert_marts_equal_truth(conn, first, later)
        lines = "select channel, platform_order_no, count(*) from {} group by 1, 2"
        parsed = dict(
            ((c, n), k) for c, n, k in conn.execute(lines.format("intermediate.int_order_items"))
        )
        built = dict(((c, n), k) for c, n, k in conn.execute(lines.format("marts.fct_order_items")))
        assert new & set(built)
        ordered = orders_in("marts.fct_orders")
        assert built == {key: k for key, k in parsed.items() if key in ordered}
