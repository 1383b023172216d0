"""Benchmark: the dbt build of the marts over N orders (default 1,000,000), full and incremental
(10,000 changed orders), beside the same SQL run as plain `CREATE TABLE AS`, in one run.

    .venv/bin/python bench/dbt_build.py [--orders 1000000] [--changed 10000] [--out result.json]

What it does, on a fresh database of a scratch ORDERPULSE_HOME (--home; default a temporary
folder, deleted at the end) whose embedded PostgreSQL it stops at the end if it started it:
1. raw rows: a sandbox world of --sample orders over all ten channels, with the merchant's WMS,
   carrier, CS and behaviour records, rendered in each platform's own format and stored by the
   real raw loader exactly as the dbt tests do (tests/dbt/sample_raw.py); then copied in SQL up
   to --orders. Copy k of an order has k appended to its order number (everywhere in the
   payload) and to its buyer id, and its merchant records are copied with it (ids suffixed), so
   copies are distinct orders of distinct buyers with the sample's mix of lifecycles;
2. `dbt build` (seeds, every model, every data test) on it, then `dbt run --full-refresh`;
3. the reference: `dbt compile --full-refresh`, then the compiled SQL of every model executed
   with psycopg in dependency order into a scratch schema, as plain `create table ... as`
   (views as `create view`, as dbt has them), then the indexes the models configure;
4. `dbt run` with nothing changed (the fixed cost of an incremental run);
5. --changed orders change in raw (one transaction, like a loader: awaiting shipment -> shipped
   where the order was waiting, the platform's modified time moves on) and `dbt run` takes them
   in; another --changed orders change and `dbt build` (incremental models + all data tests)
   takes them in; then it checks the marts hold every order once and every change;
6. prints orders, seconds and orders/s of each step, the peak memory (max RSS) of this process
   and of each dbt process, the slowest models, the marts' row counts; --out writes it as JSON.
"""

from __future__ import annotations

import argparse
import graphlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

from connectors.raw_schema import ensure_raw_tables
from fulfillment.ops_schema import ensure_ops_tables
from kernel.database import SCHEMAS, EmbeddedServer, PgConn, ensure_database, stop_embedded
from kernel.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")
CHANNELS = (
    "taobao", "jd", "douyin", "pdd", "kuaishou", "youzan", "h5mall", "pos", "regional_a",
    "regional_b",
)  # fmt: skip
CTAS_SCHEMA = "bench_ctas"
BEIJING = timezone(timedelta(hours=8))

# The merchant's records that belong to one order, copied with it: table -> its key column (also
# a payload field). Warehouses, SKUs and stock levels are shared by every copy.
OPS_COPIES = {
    "wms_events": "event_id",
    "stock_movements": "movement_id",
    "carrier_shipments": "tracking_no",
    "carrier_tracks": "event_id",
    "cs_tickets": "ticket_id",
    "behaviour_events": "event_id",
}


@dataclass(frozen=True)
class Change:
    """Where a channel's payload keeps the status and the modified time, and the status words
    of "awaiting shipment" and "shipped" (dbt_project/seeds/platform_status_map.csv)."""

    status: list[str]
    awaiting: str | int
    shipped: str | int
    modified: list[str]
    time_format: str  # beijing | unix | unix_ms | iso
    also: tuple[tuple[list[str], str], ...] = ()  # further conditions of "awaiting shipment"


CHANGES = {
    "taobao": Change(
        ["status"], "WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS", ["modified"], "beijing"
    ),
    "jd": Change(
        ["orderState"],
        "WAIT_SELLER_STOCK_OUT",
        "WAIT_GOODS_RECEIVE_CONFIRM",
        ["modified"],
        "beijing",
    ),  # fmt: skip
    "douyin": Change(["order_status"], 2, 3, ["update_time"], "unix"),
    "pdd": Change(
        ["order_status"], 1, 2, ["updated_at"], "beijing", also=((["confirm_status"], "1"),)
    ),
    "kuaishou": Change(
        ["orderBaseInfo", "status"], 30, 40, ["orderBaseInfo", "updateTime"], "unix_ms"
    ),
    "youzan": Change(
        ["full_order_info", "order_info", "status"],
        "WAIT_SELLER_SEND_GOODS",
        "WAIT_BUYER_CONFIRM_GOODS",
        ["full_order_info", "order_info", "update_time"],
        "beijing",
    ),  # fmt: skip
    "h5mall": Change(["status"], "待发货", "已发货", ["modified_at"], "iso"),
    "pos": Change(["status"], "已付款", "配送中", ["modified_at"], "iso"),
    "regional_a": Change(["status"], "等待卖家发货", "卖家已发货", ["modified_at"], "iso"),
    "regional_b": Change(["status"], "待发货", "已发货", ["modified_at"], "iso"),
}


@dataclass
class Figure:
    label: str
    orders: int
    seconds: float
    dbt_peak_rss_mib: float | None = None
    slowest: list[tuple[str, float]] = field(default_factory=list)

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def say(text: str) -> None:
    print(text, flush=True)


# -- warehouse ------------------------------------------------------------------------------


def fresh_database(server: PgConn) -> PgConn:
    name = f"bench_dbt_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    db = PgConn(server.host, server.port, server.user, server.password, name)
    with psycopg.connect(db.url(), autocommit=True) as conn:
        for schema in (*SCHEMAS, "bench"):
            conn.execute(f"create schema {schema}")
    return db


def drop_database(server: PgConn, db: PgConn) -> None:
    with psycopg.connect(server.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{db.dbname}" with (force)')


# -- raw rows -------------------------------------------------------------------------------


def load_sample(db: PgConn, orders: int, days: int, seed: int) -> datetime:
    """A sandbox world of `orders` orders stored in `raw` the way the dbt tests store theirs,
    with every order's buyer id in bench.sample_buyers; returns the world's end (its "now")."""
    sys.path.insert(0, str(REPO))  # tests/dbt holds the renderings the dbt tests load
    from sandbox.world import generate_world
    from tests.dbt.sample_raw import END, load_merchant_systems_records, load_sample_orders

    world = generate_world(seed=seed, orders=orders, days=days, end=END)
    with psycopg.connect(db.url()) as conn:
        ensure_raw_tables(conn, CHANNELS)  # every channel's table, even one the sample lacks
        ensure_ops_tables(conn)  # the decisions' tables: marts read them (empty here)
        load_sample_orders(conn, world.orders)
        load_merchant_systems_records(conn, world)
        conn.execute(
            "create table bench.sample_buyers (channel text, platform_order_no text, "
            "buyer_id text, primary key (channel, platform_order_no))"
        )
        with conn.cursor().copy("copy bench.sample_buyers from stdin") as copy:
            for order in world.orders:
                copy.write_row((order.channel, order.platform_order_no, order.buyer_id))
    return END


def copy_plan(sample: dict[str, int], orders: int) -> dict[str, int]:
    """Orders per channel adding up to `orders`, in the sample's proportions."""
    total = sum(sample.values())
    target = {c: orders * n // total for c, n in sample.items()}
    for channel in sorted(sample, key=sample.get, reverse=True)[: orders - sum(target.values())]:
        target[channel] += 1
    return target


def multiply(conn: psycopg.Connection, target: dict[str, int]) -> int:
    """Copy the sample's orders (and their merchant records) up to `target` orders per channel.
    Copy k of sample row i of a channel holding n sample rows exists iff (k-1)*n + i <= extra.
    Buyer ids are rewritten where the payload holds them verbatim as a JSON string (the
    platforms render the sandbox's buyer id as their open id)."""
    counts = {c: conn.execute(f"select count(*) from raw.{c}_orders").fetchone()[0] for c in target}
    counts = {c: n for c, n in counts.items() if n}
    copies = max(math.ceil((target[c] - n) / n) for c, n in counts.items())
    if copies < 1:
        return 0
    conn.execute("create table bench.copy_plan (channel text primary key, n bigint, extra bigint)")
    for channel, n in counts.items():
        conn.execute(
            "insert into bench.copy_plan values (%s, %s, %s)", [channel, n, target[channel] - n]
        )
    union = " union all ".join(
        f"select channel, platform_order_no from raw.{c}_orders" for c in target
    )
    conn.execute(
        f"""create table bench.sample_index as
        select channel, platform_order_no, b.buyer_id,
            row_number() over (partition by channel order by platform_order_no) as i
        from ({union}) as orders
        left join bench.sample_buyers as b using (channel, platform_order_no)"""
    )
    conn.execute("alter table bench.sample_index add primary key (channel, platform_order_no)")
    conn.execute(
        f"""create table bench.copies as
        select k, lpad(k::text, {len(str(copies))}, '0') as sfx
        from generate_series(1, {copies}) as k"""
    )
    for channel in target:
        conn.execute(
            f"""insert into raw.{channel}_orders
                (channel, platform_order_no, source_modified_at, payload, content_hash,
                 loaded_at, run_id)
            select
                s.channel,
                s.platform_order_no || c.sfx,
                s.source_modified_at,
                case
                    when x.buyer_id is null then r.payload
                    else replace(r.payload, '"' || x.buyer_id || '"',
                                 '"' || x.buyer_id || '-' || c.sfx || '"')
                end::jsonb,
                s.content_hash || c.sfx,
                now(),
                'bench-copy'
            from raw.{channel}_orders as s
            join bench.sample_index as x using (channel, platform_order_no)
            join bench.copy_plan as p using (channel)
            cross join bench.copies as c
            cross join lateral (
                select replace(s.payload::text, s.platform_order_no, s.platform_order_no || c.sfx)
                    as payload
            ) as r
            where (c.k - 1) * p.n + x.i <= p.extra"""
        )
    for table, key in OPS_COPIES.items():
        fields = {
            key: f"s.{key} || '-' || c.sfx",
            "platform_order_no": "(s.payload ->> 'platform_order_no') || c.sfx",
            "tracking_no": "(s.payload ->> 'tracking_no') || '-' || c.sfx",
            "buyer_id": "(s.payload ->> 'buyer_id') || '-' || c.sfx",
        }
        rewritten = ", ".join(f"'{name}', {expr}" for name, expr in fields.items())
        select = f"""insert into raw.{table}
                ({key}, source_modified_at, payload, content_hash, loaded_at, run_id)
            select
                s.{key} || '-' || c.sfx,
                s.source_modified_at,
                s.payload || jsonb_strip_nulls(jsonb_build_object({rewritten})),
                s.content_hash,
                now(),
                'bench-copy'
            from raw.{table} as s
            cross join bench.copies as c"""
        conn.execute(
            f"""{select}
            join bench.sample_index as x
                on x.channel = s.payload ->> 'channel'
                and x.platform_order_no = s.payload ->> 'platform_order_no'
            join bench.copy_plan as p on p.channel = x.channel
            where (c.k - 1) * p.n + x.i <= p.extra"""
        )
        if table == "behaviour_events":  # browsing without an order belongs to the buyer
            conn.execute(f"{select} where s.payload ->> 'platform_order_no' is null")
    return copies


def vacuum_analyze(db: PgConn) -> None:
    """What autovacuum would have done by the time a build runs (hint bits, statistics)."""
    with psycopg.connect(db.url(), autocommit=True) as conn:
        tables = conn.execute("select tablename from pg_tables where schemaname = 'raw'").fetchall()
        for (table,) in tables:
            conn.execute(f"vacuum (analyze) raw.{table}")


# -- changes --------------------------------------------------------------------------------


def time_value(at: datetime, time_format: str) -> str | int:
    if time_format == "beijing":
        return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    if time_format == "unix":
        return int(at.timestamp())
    if time_format == "unix_ms":
        return int(at.timestamp() * 1000)
    return at.astimezone(BEIJING).isoformat()


def awaiting_condition(change: Change) -> tuple[str, list[Any]]:
    conditions = [(change.status, str(change.awaiting)), *change.also]
    sql = " and ".join("payload #>> %s = %s" for _ in conditions)
    return sql, [v for path, value in conditions for v in (path, value)]


def pick_changes(db: PgConn, changed: int, batches: int) -> dict[int, dict[str, int]]:
    """`batches` disjoint sets of `changed` orders, orders awaiting shipment first, spread over
    the channels at random (by hash); returns orders per batch and channel."""
    with psycopg.connect(db.url()) as conn:
        conn.execute(
            "create table bench.candidates (channel text, platform_order_no text, "
            "awaiting boolean, r text)"
        )
        for channel in CHANNELS:
            condition, params = awaiting_condition(CHANGES[channel])
            conn.execute(
                f"""insert into bench.candidates
                select channel, platform_order_no, coalesce({condition}, false),
                    md5(channel || platform_order_no)
                from raw.{channel}_orders""",
                params,
            )
        conn.execute(
            """create table bench.changes as
            select channel, platform_order_no,
                1 + (row_number() over (order by awaiting desc, r) - 1) %% %s as batch
            from bench.candidates
            order by awaiting desc, r
            limit %s""",
            [batches, changed * batches],
        )
        rows = conn.execute(
            "select batch, channel, count(*) from bench.changes group by 1, 2"
        ).fetchall()
    plan: dict[int, dict[str, int]] = {}
    for batch, channel, n in rows:
        plan.setdefault(batch, {})[channel] = n
    return plan


def apply_changes(db: PgConn, batch: int, at: datetime) -> int:
    """One loader-like transaction: the batch's orders ship (where they awaited shipment) and
    their modified time becomes `at`."""
    changed = 0
    with psycopg.connect(db.url()) as conn, conn.transaction():
        for channel in CHANNELS:
            change = CHANGES[channel]
            condition, params = awaiting_condition(change)
            cur = conn.execute(
                f"""update raw.{channel}_orders as o
                set payload = jsonb_set(
                        case when {condition}
                            then jsonb_set(o.payload, %s, %s::jsonb) else o.payload end,
                        %s, %s::jsonb),
                    source_modified_at = %s,
                    content_hash = md5(o.content_hash || %s),
                    loaded_at = now(),
                    run_id = %s
                from bench.changes as x
                where x.batch = %s and x.channel = %s
                    and o.platform_order_no = x.platform_order_no""",
                [
                    *params,
                    change.status, json.dumps(change.shipped),
                    change.modified, json.dumps(time_value(at, change.time_format)),
                    at, str(batch), f"bench-change-{batch}", batch, channel,
                ],
            )  # fmt: skip
            changed += cur.rowcount
    return changed


# -- dbt ------------------------------------------------------------------------------------


@dataclass
class DbtRun:
    seconds: float
    peak_rss_mib: float
    results: list[dict[str, Any]]

    def slowest(self, n: int = 5) -> list[tuple[str, float]]:
        models = [r for r in self.results if r["unique_id"].startswith("model.")]
        models.sort(key=lambda r: r["execution_time"], reverse=True)
        return [(r["unique_id"].split(".")[-1], round(r["execution_time"], 1)) for r in models[:n]]

    def failures(self) -> list[str]:
        return [r["unique_id"] for r in self.results if r["status"] in ("error", "fail", "skipped")]


def vm_hwm_kib(pid: int) -> int:
    """Peak RSS so far of a running process (its own, since its exec), 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1])


def dbt(
    db: PgConn, work: Path, *args: str, project: Path = PROJECT, timeout: float = 7200
) -> DbtRun:
    """`dbt <args>` as a subprocess (as Dagster and `make` run it): its wall time and its peak
    RSS (VmHWM sampled every 0.05 s; the child's ru_maxrss would count this process's memory
    too, inherited at fork). Past `timeout` the run is cancelled and the benchmark stops."""
    env = {
        **os.environ,
        **db.env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(work / "logs"),
    }
    target = work / "target"
    command = [str(DBT), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    command += ["--target-path", str(target)]
    (target / "run_results.json").unlink(missing_ok=True)
    timed_out = False
    with (work / "dbt.log").open("a") as log:
        log.write(f"\n$ dbt {' '.join(args)}\n")
        log.flush()
        began = time.perf_counter()
        proc = subprocess.Popen(command, cwd=project, env=env, stdout=log, stderr=log)
        peak_kib = 0
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = max(peak_kib, vm_hwm_kib(proc.pid))
            if not timed_out and time.perf_counter() - began > timeout:
                timed_out = True
                proc.kill()
                cancel_queries(db)
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    run = DbtRun(seconds, peak_kib / 1024, results)
    if timed_out:
        raise SystemExit(f"dbt {' '.join(args)} took over {timeout:.0f} s: stopped")
    if proc.returncode != 0:
        failed = ", ".join(run.failures()[:10]) or "see the log"
        raise SystemExit(f"dbt {' '.join(args)} failed ({failed}); log: {work / 'dbt.log'}")
    return run


def cancel_queries(db: PgConn) -> None:
    """Cancel what a killed dbt left running in the benchmark's own database."""
    with psycopg.connect(db.url(), autocommit=True) as conn:
        conn.execute(
            "select pg_cancel_backend(pid) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        )


def ctas_reference(db: PgConn, manifest_file: Path) -> tuple[Figure, Figure]:
    """The compiled SQL of every model as plain `create table/view ... as`, in dependency order,
    into CTAS_SCHEMA (each model's refs pointed at its copy there); then the models' indexes."""
    manifest = json.loads(manifest_file.read_text())
    models = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    graph = {uid: [d for d in n["depends_on"]["nodes"] if d in models] for uid, n in models.items()}
    order = list(graphlib.TopologicalSorter(graph).static_order())
    renames = {n["relation_name"]: f'{CTAS_SCHEMA}."{n["alias"]}"' for n in models.values()}
    timings: list[tuple[str, float]] = []
    with psycopg.connect(db.url(), autocommit=True) as conn:
        conn.execute(f"drop schema if exists {CTAS_SCHEMA} cascade")
        conn.execute(f"create schema {CTAS_SCHEMA}")
        for uid in order:
            node = models[uid]
            sql = node["compiled_code"]
            for old, new in renames.items():
                sql = sql.replace(old, new)
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            began = time.perf_counter()
            conn.execute(f'create {kind} {CTAS_SCHEMA}."{node["alias"]}" as\n{sql}')
            timings.append((node["name"], time.perf_counter() - began))
        index_began = time.perf_counter()
        for uid in order:
            node = models[uid]
            for index in node["config"].get("indexes") or []:
                unique = "unique " if index.get("unique") else ""
                columns = ", ".join(index["columns"])
                conn.execute(f'create {unique}index on {CTAS_SCHEMA}."{node["alias"]}" ({columns})')
        index_seconds = time.perf_counter() - index_began
    timings.sort(key=lambda t: t[1], reverse=True)
    slowest = [(name, round(s, 1)) for name, s in timings[:5]]
    seconds = sum(s for _, s in timings)
    return (
        Figure("same SQL as CREATE TABLE AS", 0, seconds, slowest=slowest),
        Figure("  + the models' indexes", 0, seconds + index_seconds),
    )


# -- report ---------------------------------------------------------------------------------


def row_counts(db: PgConn) -> dict[str, int]:
    with psycopg.connect(db.url()) as conn:
        tables = conn.execute(
            "select schemaname, tablename from pg_tables "
            "where schemaname in ('intermediate', 'marts') order by 1, 2"
        ).fetchall()
        return {
            f"{s}.{t}": conn.execute(f'select count(*) from {s}."{t}"').fetchone()[0]
            for s, t in tables
        }


def check_marts(db: PgConn, orders: int, after: datetime) -> dict[str, int]:
    """Orders in the marts (each once) and how many show a change made after the world's end."""
    with psycopg.connect(db.url()) as conn:
        out = {}
        for table in ("fct_orders", "order_holographic"):
            total, keys, changed = conn.execute(
                f"""select count(*), count(distinct (channel, platform_order_no)),
                    count(*) filter (where modified_at > %s)
                from marts.{table}""",
                [after],
            ).fetchone()
            out |= {f"{table}_rows": total, f"{table}_keys": keys, f"{table}_changed": changed}
        return out


def code_version() -> dict[str, Any]:
    """The commit measured and whether dbt_project/ had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "dbt_project")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dbt_project_changed": bool(dirty)}


def print_table(figures: list[Figure]) -> None:
    say(f"\n{'':<44}{'orders':>11}{'seconds':>10}{'orders/s':>11}{'dbt max RSS':>13}")
    for f in figures:
        rss = f"{f.dbt_peak_rss_mib:,.0f} MiB" if f.dbt_peak_rss_mib else ""
        rate = f"{f.orders_per_s:,.0f}" if f.orders else "-"
        say(f"{f.label:<44}{f.orders:>11,}{f.seconds:>10.1f}{rate:>11}{rss:>13}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10_000, help="orders per incremental run")
    parser.add_argument("--sample", type=int, default=20_000, help="sandbox orders rendered")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--dbt-timeout", type=float, default=7200, help="seconds one dbt command may take"
    )
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT, help="a dbt project to measure instead "
        "of dbt_project/ (e.g. a copy with a candidate change)",
    )  # fmt: skip
    parser.add_argument("--home", type=Path, default=None, help="scratch ORDERPULSE_HOME")
    parser.add_argument("--keep", action="store_true", help="keep the database (and the home)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="op-bench-dbt-"))
    home = args.home or scratch / "home"
    settings = Settings(home=home, pg_url=None)  # always the home's own embedded server
    started = not EmbeddedServer(settings.pgdata).is_running()
    server = ensure_database(settings)
    db = fresh_database(server)
    work = scratch / "dbt"
    work.mkdir()
    say(f"warehouse: {db.dbname} on 127.0.0.1:{db.port} (home {settings.home_dir})")
    try:
        result = run(args, db, work)
        result["total_seconds"] = round(time.monotonic() - began, 1)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1, default=str))
        return 0
    finally:
        if not args.keep:
            drop_database(server, db)
        if started:
            stop_embedded(settings)
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace, db: PgConn, work: Path) -> dict[str, Any]:
    args.project_dir = args.project_dir.resolve()
    # before the run: others may edit dbt_project/ meanwhile
    version = {**code_version(), "project_dir": str(args.project_dir)}
    sample_size = min(args.sample, args.orders)
    t0 = time.monotonic()
    end = load_sample(db, sample_size, args.days, args.seed)
    with psycopg.connect(db.url()) as conn:
        sample = {
            c: conn.execute(f"select count(*) from raw.{c}_orders").fetchone()[0] for c in CHANNELS
        }
    load_seconds = time.monotonic() - t0
    say(f"sample: {sum(sample.values()):,} orders rendered and loaded in {load_seconds:.1f} s")
    t0 = time.monotonic()
    with psycopg.connect(db.url()) as conn:
        copies = multiply(conn, copy_plan(sample, args.orders))
    vacuum_analyze(db)
    with psycopg.connect(db.url()) as conn:
        per_channel = {
            c: conn.execute(f"select count(*) from raw.{c}_orders").fetchone()[0] for c in CHANNELS
        }
        ops_rows = {
            t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in OPS_COPIES
        }
        raw_size = conn.execute(
            "select sum(pg_total_relation_size(format('%I.%I', schemaname, tablename))) "
            "from pg_tables where schemaname = 'raw'"
        ).fetchone()[0]
    raw_size = float(raw_size)  # numeric
    orders = sum(per_channel.values())
    say(
        f"raw: {orders:,} orders ({copies} copies of the sample at most) and "
        f"{sum(ops_rows.values()):,} merchant records, {raw_size / 2**30:.2f} GiB, "
        f"in {time.monotonic() - t0:.1f} s; per channel {per_channel}"
    )
    batches = pick_changes(db, args.changed, 2)

    figures: list[Figure] = []

    def measure(label: str, rows: int, *dbt_args: str) -> DbtRun:
        say(f"... dbt {' '.join(dbt_args)}")
        result = dbt(db, work, *dbt_args, project=args.project_dir, timeout=args.dbt_timeout)
        figure = Figure(label, rows, result.seconds, result.peak_rss_mib, result.slowest())
        figures.append(figure)
        failed = result.failures()
        say(
            f"    {result.seconds:.1f} s, dbt max RSS {result.peak_rss_mib:,.0f} MiB"
            + (f", NOT PASSED: {failed}" if failed else "")
        )
        return result

    full_build = measure("dbt build, full (seeds, models, tests)", orders, "build")
    counts = row_counts(db)
    full_run = measure("dbt run --full-refresh (models)", orders, "run", "--full-refresh")
    say("... dbt compile --full-refresh, then the compiled SQL as CREATE TABLE AS")
    dbt(db, work, "compile", "--full-refresh", project=args.project_dir, timeout=args.dbt_timeout)
    ctas, ctas_indexed = ctas_reference(db, work / "target" / "manifest.json")
    ctas.orders = ctas_indexed.orders = orders
    figures += [ctas, ctas_indexed]
    say(f"    {ctas.seconds:.1f} s (+ indexes {ctas_indexed.seconds:.1f} s)")
    with psycopg.connect(db.url()) as conn:
        ctas_rows = conn.execute(f"select count(*) from {CTAS_SCHEMA}.order_holographic").fetchone()
    noop = measure("dbt run, nothing changed", 0, "run")

    change_seconds = []
    incremental: list[DbtRun] = []
    for batch, command in ((1, "run"), (2, "build")):
        t0 = time.monotonic()
        changed = apply_changes(db, batch, end + timedelta(hours=batch))
        change_seconds.append(round(time.monotonic() - t0, 2))
        label = f"dbt {command}, {changed:,} changed orders"
        incremental.append(measure(label, changed, command))
    check = check_marts(db, orders, end)

    print_table(figures)
    run_share = incremental[0].seconds / full_run.seconds
    build_share = incremental[1].seconds / full_build.seconds
    say(
        f"\nincremental / full: run {run_share:.1%}, build {build_share:.1%} (target < 10 %); "
        f"nothing changed: {noop.seconds / full_run.seconds:.1%} of the full run"
    )
    say(f"max RSS of this process: {peak_rss_mib():,.0f} MiB")
    for figure in figures:
        if figure.slowest:
            slowest = ", ".join(f"{name} {s:.1f}" for name, s in figure.slowest)
            say(f"slowest models, {figure.label}: {slowest}")
    say(f"row counts after the full build: {counts}")
    ok = (
        check["fct_orders_rows"] == check["fct_orders_keys"] == orders
        and check["order_holographic_rows"] == check["order_holographic_keys"] == orders
        and check["fct_orders_changed"] == check["order_holographic_changed"]
        == sum(sum(b.values()) for b in batches.values())
        and ctas_rows[0] == orders
    )  # fmt: skip
    say(
        f"check: {check}, CTAS order_holographic rows {ctas_rows[0]:,}: "
        + ("ok" if ok else "FAILED")
    )
    return {
        "date": datetime.now().date().isoformat(),
        **version,
        "orders": orders,
        "per_channel": per_channel,
        "merchant_records": ops_rows,
        "raw_gib": round(raw_size / 2**30, 2),
        "sample_orders": sum(sample.values()),
        "changes_per_batch": batches,
        "change_seconds": change_seconds,
        "figures": [{**asdict(f), "orders_per_s": round(f.orders_per_s)} for f in figures],
        "incremental_run_share": round(run_share, 4),
        "incremental_build_share": round(build_share, 4),
        "bench_peak_rss_mib": round(peak_rss_mib()),
        "row_counts": counts,
        "check": check,
        "check_ok": ok,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    sys.exit(main())
