"""Place receiver addresses: cpca turns the free-text address into province/city/district, the
district's adcode and its coordinates (for distances to warehouses).

Batch and vectorised: only addresses not seen before are parsed (cached by the md5 of the full
address in `raw.address_geo_cache`), one `cpca.transform` call per batch of 50,000 orders read
through a server-side cursor (a first pass over 1,000,000 orders read whole took 1.4 GiB); the
per-order table `raw.address_geo` is then written with one set-based upsert. An address cpca
cannot place is kept with `is_parsed = false`, never dropped.

Incremental: a pass looks only at the orders int_orders wrote since the last pass began (by
`_written_xid`, against the snapshot the last pass stored in `raw.address_geo_passes`, as dbt's
models find their work): read whole, the 1,000,000 orders of a built warehouse cost every pass
47,000 pages and a million md5s (2-12 s), for the ~10,000 a cycle changes. With no pass stored
(a new warehouse, or the row deleted by hand to place everything again) it reads every order.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import psycopg

DDL = """
create table if not exists raw.address_geo_cache (
    address_hash text primary key,
    address      text not null,
    province     text,
    city         text,
    district     text,
    adcode       text,
    latitude     double precision,
    longitude    double precision,
    is_parsed    boolean not null,
    parsed_at    timestamptz not null default now()
);
create table if not exists raw.address_geo (
    channel           text not null,
    platform_order_no text not null,
    address_hash      text not null,
    province          text,
    city              text,
    district          text,
    adcode            text,
    latitude          double precision,
    longitude         double precision,
    is_parsed         boolean not null,
    loaded_at         timestamptz not null default now(),
    primary key (channel, platform_order_no)
);
"""

# where the last pass began: the snapshot taken before it read int_orders
PASSES_DDL = """
create table if not exists raw.address_geo_passes (
    pass      boolean primary key default true check (pass),
    snapshot  text not null,
    passed_at timestamptz not null default now()
);
"""

# the orders whose address is new or changed since they were placed ({since}: of the orders
# int_orders wrote since the last pass began, or of all)
_CHANGED = """
select o.channel, o.platform_order_no, a.address, md5(a.address) as address_hash
from intermediate.int_orders o
cross join lateral (
    select concat_ws('', o.province, o.city, o.district, o.receiver_address) as address
) a
left join raw.address_geo g using (channel, platform_order_no)
where g.address_hash is distinct from md5(a.address){since}
"""
# written by a transaction the last pass's snapshot did not see (the `_written_xid` index range)
_SINCE = """
    and o._written_xid >= pg_snapshot_xmin(%(snapshot)s::pg_snapshot)::text::bigint
    and not pg_visible_in_snapshot(o._written_xid::text::xid8, %(snapshot)s::pg_snapshot)"""

_UPSERT = """
insert into raw.address_geo as g
    (channel, platform_order_no, address_hash, province, city, district, adcode,
     latitude, longitude, is_parsed, loaded_at)
select s.channel, s.platform_order_no, s.address_hash, c.province, c.city, c.district,
       c.adcode, c.latitude, c.longitude, c.is_parsed, now()
from _geo_stage s
join raw.address_geo_cache c using (address_hash)
on conflict (channel, platform_order_no) do update
    set address_hash = excluded.address_hash, province = excluded.province,
        city = excluded.city, district = excluded.district, adcode = excluded.adcode,
        latitude = excluded.latitude, longitude = excluded.longitude,
        is_parsed = excluded.is_parsed, loaded_at = excluded.loaded_at
"""


@dataclass
class GeoReport:
    orders: int = 0  # orders (re)placed in this call
    addresses_parsed: int = 0  # distinct addresses cpca parsed (cache misses)
    cache_hits: int = 0
    unparsed: int = 0  # of the parsed addresses, how many cpca could not place

    def as_metadata(self) -> dict[str, int]:
        return dict(vars(self))


@cache
def _coordinates() -> pd.DataFrame:
    import cpca

    path = Path(cpca.__file__).parent / "resources" / "adcodes.csv"
    frame = pd.read_csv(path, dtype={"adcode": str})
    frame["adcode"] = frame["adcode"].str[:6]
    return frame.drop_duplicates("adcode").set_index("adcode")[["latitude", "longitude"]]


def parse_addresses(addresses: list[str]) -> pd.DataFrame:
    """cpca over a batch: one row per input with province, city, district, adcode, lat/lon
    and is_parsed (False when cpca finds no district-level place)."""
    import cpca

    if not addresses:
        cols = ["address", "province", "city", "district", "adcode", "latitude", "longitude"]
        return pd.DataFrame(columns=[*cols, "is_parsed"])
    parsed = cpca.transform(addresses).rename(
        columns={"省": "province", "市": "city", "区": "district"}
    )
    out = pd.DataFrame({"address": addresses})
    for col in ("province", "city", "district", "adcode"):
        out[col] = parsed[col].where(parsed[col].notna(), None).astype(object).values
    # municipalities come back as 北京市 / 市辖区: the city is the province
    out["city"] = out["city"].where(out["city"] != "市辖区", out["province"])
    out["adcode"] = out["adcode"].map(lambda v: str(v)[:6] if pd.notna(v) else None)
    coords = _coordinates()
    joined = out.join(coords, on="adcode")
    joined["is_parsed"] = joined["district"].notna() & joined["latitude"].notna()
    return joined


def parse_addresses_split(
    addresses: list[str], helpers: Executor | None, parts: int
) -> pd.DataFrame:
    """`parse_addresses` with the list cut in `parts`: all but the first parsed by `helpers`
    (processes: cpca is pure Python and holds the GIL) while this process parses the first.
    The same rows in the same order as one call."""
    if helpers is None or parts < 2 or len(addresses) < parts:
        return parse_addresses(addresses)
    size = -(-len(addresses) // parts)
    chunks = [addresses[i : i + size] for i in range(0, len(addresses), size)]
    pending = [helpers.submit(parse_addresses, chunk) for chunk in chunks[1:]]
    frames = [parse_addresses(chunks[0])]
    for chunk, future in zip(chunks[1:], pending, strict=True):
        try:
            frames.append(future.result())
        except BrokenExecutor:  # a helper that could not start or died: parse it here
            frames.append(parse_addresses(chunk))
    return pd.concat(frames, ignore_index=True)


# Addresses to parse in one batch before cpca's work is shared with helper processes (a
# first pass: 793,069 addresses at 1,000,000 orders, 37 s on one core); fewer (a cycle's few
# thousand) are parsed here, as a helper costs ~2 s to start and import cpca.
SPLIT_FROM = 20_000
PARSE_PROCESSES = min(2, os.cpu_count() or 1)

# orders read and placed at a time: a first pass over 1,000,000 orders read whole raised the
# process's peak by 1.4 GiB (793,069 addresses through cpca at once)
BATCH_ORDERS = 50_000


def enrich_addresses(
    conn: psycopg.Connection,
    batch_orders: int = BATCH_ORDERS,
    split_from: int = SPLIT_FROM,
    processes: int = PARSE_PROCESSES,
) -> GeoReport:
    """Place every order whose address is new or changed, `batch_orders` at a time (read
    through a server-side cursor); a batch with `split_from` addresses or more to parse shares
    them with `processes - 1` helper processes (started on first need). Returns what it did."""
    report = GeoReport()
    helpers = _Helpers(processes - 1)
    with ExitStack() as stack, conn.transaction():
        stack.callback(helpers.close)
        conn.execute(DDL)
        conn.execute(PASSES_DDL)
        # taken before the read (a statement of its own, so the read's snapshot sees at least
        # as much): a row committed after it is read again by the next pass, never missed
        (snapshot,) = conn.execute("select pg_current_snapshot()::text").fetchone()
        last = conn.execute("select snapshot from raw.address_geo_passes").fetchone()
        conn.execute(
            "create temp table _geo_stage (channel text, platform_order_no text, "
            "address_hash text) on commit drop"
        )
        with conn.cursor(name="address_geo_changed") as changed:
            if last is None:
                changed.execute(_CHANGED.format(since=""))
            else:
                changed.execute(_CHANGED.format(since=_SINCE), {"snapshot": last[0]})
            columns = ["channel", "platform_order_no", "address", "address_hash"]
            while rows := changed.fetchmany(batch_orders):
                _place(conn, pd.DataFrame(rows, columns=columns), report, helpers, split_from)
        conn.execute(
            "insert into raw.address_geo_passes (snapshot) values (%s) "
            "on conflict (pass) do update set snapshot = excluded.snapshot, passed_at = now()",
            [snapshot],
        )
        if report.orders:
            conn.execute(_UPSERT)
    return report


class _Helpers:
    """Up to `count` helper processes for cpca, started when a batch first needs them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> Executor | None:
        if self.count < 1:
            return None
        if self._pool is None:
            # spawned, not forked: the caller (a Dagster run) has threads of its own
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.count, mp_context=context)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _place(
    conn: psycopg.Connection,
    frame: pd.DataFrame,
    report: GeoReport,
    helpers: _Helpers | None = None,
    split_from: int = SPLIT_FROM,
) -> None:
    """One batch: its addresses not in the cache parsed into it, its orders staged for the
    upsert. An address parsed by an earlier batch of the pass is in the cache by then, and
    is not counted as a hit (`parsed_at` is the pass's transaction time)."""
    cached = dict(
        conn.execute(
            "select address_hash, parsed_at < now() from raw.address_geo_cache "
            "where address_hash = any(%s)",
            [frame["address_hash"].unique().tolist()],
        ).fetchall()
    )
    fresh = frame.loc[~frame["address_hash"].isin(cached)].drop_duplicates("address_hash")
    addresses = fresh["address"].tolist()
    if helpers is not None and len(addresses) >= split_from and helpers.count > 0:
        parsed = parse_addresses_split(addresses, helpers.pool(), helpers.count + 1)
    else:
        parsed = parse_addresses(addresses)
    parsed["address_hash"] = fresh["address_hash"].values
    cols = ["address_hash", "address", "province", "city", "district", "adcode",
            "latitude", "longitude", "is_parsed"]  # fmt: skip
    with conn.cursor() as cur:
        with cur.copy(f"copy raw.address_geo_cache ({', '.join(cols)}) from stdin") as copy:
            for row in parsed[cols].astype(object).itertuples(index=False):
                copy.write_row([None if pd.isna(v) else v for v in row])
        with cur.copy("copy _geo_stage from stdin") as copy:
            for row in frame[["channel", "platform_order_no", "address_hash"]].itertuples(
                index=False
            ):
                copy.write_row(row)
    before = {h for h, earlier in cached.items() if earlier}
    report.orders += len(frame)
    report.addresses_parsed += len(fresh)
    report.cache_hits += int(frame["address_hash"].isin(before).sum())
    report.unparsed += int((~parsed["is_parsed"]).sum())
