"""DataFrames in and out of PostgreSQL, for the decision stores: one query into a frame, one
frame into a temp table by COPY (no per-row INSERT)."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pandas as pd
import psycopg

# Sort and hash memory for a pass's whole reads (every open order, 30 days of deliveries and
# lines): at PostgreSQL's default of 4 MB routing's lanes spilled 360 MB to temporary files
# and its hot-SKU sums 150 MB at 1,000,000 orders, written and read back through the same page
# cache the warehouse's tables need.
WHOLE_READ_WORK_MEM = "256MB"


def allow_whole_reads(conn: psycopg.Connection) -> None:
    """Give the current transaction `WHOLE_READ_WORK_MEM` per sort or hash (`set local`: the
    server's own setting returns at commit or rollback). Call inside `conn.transaction()`."""
    conn.execute(f"set local work_mem = '{WHOLE_READ_WORK_MEM}'")


def read_frame(conn: psycopg.Connection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """The rows of `sql`, with the column names it returns."""
    with conn.cursor() as cur:
        cur.execute(sql, params or {})
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def read_frame_by_copy(
    conn: psycopg.Connection,
    sql: str,
    params: dict | None = None,
    *,
    text: tuple[str, ...] = (),
    times: tuple[str, ...] = (),
) -> pd.DataFrame:
    """`read_frame` for large results of text, numbers and times: `COPY (sql) TO STDOUT` as
    CSV into pandas' C parser instead of a Python tuple per row (routing's 319,000 delivered
    shipments at 1,000,000 orders: 4.9 -> 2.6 s with the query). `text` columns stay text
    (an id like "007" is not a number), `times` are parsed as UTC timestamps, the rest are
    numbers. Not for booleans, JSON or arrays; an empty string reads as missing, like NULL."""
    query = psycopg.ClientCursor(conn).mogrify(sql, params or {})
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout (format csv, header)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    # only an empty field is missing: a province or carrier spelt "NA" or "null" is a value
    frame = pd.read_csv(
        buffer, keep_default_na=False, na_values=[""], dtype=dict.fromkeys(text, "str")
    )
    for column in times:
        frame[column] = pd.to_datetime(frame[column], format="ISO8601", utc=True)
    return frame


def copy_frame(conn: psycopg.Connection, table: str, ddl: str, frame: pd.DataFrame) -> None:
    """(Re)create temp table `table` with the columns of `ddl` ("name type, ...") for this
    transaction and COPY `frame`'s matching columns into it (missing values as NULL)."""
    conn.execute(f"drop table if exists {table}")
    conn.execute(f"create temp table {table} ({ddl}) on commit drop")
    columns = [c.split()[0] for c in ddl.split(",")]
    data = frame.reindex(columns=columns).astype(object)
    data = data.where(pd.notna(data), None)
    with conn.cursor() as cur, cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as cp:
        for row in data.itertuples(index=False):
            cp.write_row(row)


def wrote_in_transaction(conn: psycopg.Connection) -> bool:
    """Whether `conn`'s current transaction has written anything yet (it has a transaction
    id): another connection would not see those writes."""
    (written,) = conn.execute("select pg_current_xact_id_if_assigned() is not null").fetchone()
    return bool(written)


def read_beside(
    conn: psycopg.Connection,
    read: Callable[[psycopg.Connection], pd.DataFrame],
    *,
    inline: bool = False,
) -> Future[pd.DataFrame]:
    """`read(connection)` (a `read_frame` or `read_frame_by_copy` of a query) run on a
    connection of its own to `conn`'s database, in a thread of its own, with the whole-read
    work memory: its query runs in another backend, on the other core, while the caller goes
    on with its own reads. Only for a read that needs nothing of the caller's transaction
    (no temp table, nothing it wrote: `inline=True` when `wrote_in_transaction` said so before
    the caller's own temp tables, and the read runs on `conn`, now). `.result()` is the
    frame, or raises the read's error."""
    if inline:
        done: Future[pd.DataFrame] = Future()
        done.set_result(read(conn))
        return done
    # read here: libpq's connection is not to be used from two threads at once
    dsn, password = conn.info.dsn, conn.info.password

    def read_on_side() -> pd.DataFrame:
        with psycopg.connect(dsn, password=password, autocommit=True) as side:
            side.execute(f"set work_mem = '{WHOLE_READ_WORK_MEM}'")
            return read(side)

    pool = ThreadPoolExecutor(1, thread_name_prefix="read-beside")
    try:
        return pool.submit(read_on_side)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its read
