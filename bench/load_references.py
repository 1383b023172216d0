"""What a user would write instead of OrderPulse's raw load, timed on the same orders:
`pandas.DataFrame.to_sql` (SQLAlchemy, append) into a new table as pandas makes it (text
columns, no key) and into one of the raw table's shape (jsonb payload, primary key, the
`loaded_at` index), and a dlt pipeline (merge on the primary key, nested payloads normalised
into columns and child tables, dlt's default).

Each reads rows already loaded into `raw` (reading is not timed) and writes to a table of its
own, so they load exactly what the raw load did. dlt is optional (`pip install -e '.[bench]'`,
which `make bench` does): without it the dlt figure is absent and says why.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
import psycopg

from connectors.raw_schema import ORDERS_DDL, TOAST_STORAGE
from kernel.database import PgConn

COLUMNS = "channel, platform_order_no, source_modified_at, payload::text as payload, content_hash"


def sample(db: PgConn, channels: list[str], rows: int) -> pd.DataFrame:
    """Up to `rows` loaded raw rows, spread over `channels` in equal shares."""
    share = max(1, rows // max(1, len(channels)))
    frames = []
    with psycopg.connect(db.url()) as conn:
        for channel in channels:
            cur = conn.execute(
                f"select {COLUMNS} from raw.{channel}_orders order by platform_order_no limit %s",
                [share],
            )
            names = [d.name for d in cur.description]
            frames.append(pd.DataFrame(cur.fetchall(), columns=names))
    return pd.concat(frames, ignore_index=True)


def to_sql_rate(db: PgConn, frame: pd.DataFrame) -> dict[str, Any]:
    """`DataFrame.to_sql` as its docs show it (chunks of 10,000; SQLAlchemy 2 sends each as
    multi-row INSERTs), into a table pandas makes (text columns, no key)."""
    return _timed_to_sql(db, frame, "orders_to_sql", create=None)


def to_sql_keyed_rate(db: PgConn, frame: pd.DataFrame) -> dict[str, Any]:
    """`DataFrame.to_sql` into a table of the raw table's shape (jsonb payload, primary key on
    the order, the `loaded_at` index): what the raw load writes, appended (no validation, no
    newest-version upsert: a second run of the same rows fails on the key)."""
    from sqlalchemy.dialects.postgresql import JSONB

    # parsed before the clock starts, as dlt's records are: SQLAlchemy serialises JSONB itself
    keyed = frame.assign(payload=[json.loads(text) for text in frame["payload"]])
    create = ORDERS_DDL.format(
        table="bench.orders_to_sql_keyed", index="bench_orders_to_sql_keyed", storage=TOAST_STORAGE
    )
    return _timed_to_sql(db, keyed, "orders_to_sql_keyed", create, {"payload": JSONB()})


def _timed_to_sql(
    db: PgConn, frame: pd.DataFrame, table: str, create: str | None, dtype: dict | None = None
) -> dict[str, Any]:
    """Rows/s of `frame.to_sql` appending to `bench.<table>`, made afresh by `create` (or by
    pandas when None)."""
    from sqlalchemy import create_engine

    engine = create_engine(db.url().replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("create schema if not exists bench")
            conn.exec_driver_sql(f"drop table if exists bench.{table}")
            if create:
                conn.exec_driver_sql(create)
        began = time.perf_counter()
        frame.to_sql(
            table, engine, schema="bench", if_exists="append", index=False, chunksize=10_000,
            dtype=dtype,
        )  # fmt: skip
        seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    return {
        "rows": len(frame),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(frame) / seconds),
    }


def dlt_rate(db: PgConn, frame: pd.DataFrame, workdir: str) -> dict[str, Any]:
    """A dlt pipeline into PostgreSQL, merging on (channel, platform_order_no)."""
    try:
        import dlt
    except ImportError:
        return {"skipped": "dlt is not installed (pip install -e '.[bench]')"}
    records = [
        {
            "channel": r.channel,
            "platform_order_no": r.platform_order_no,
            "source_modified_at": r.source_modified_at,
            "content_hash": r.content_hash,
            "payload": json.loads(r.payload),
        }
        for r in frame.itertuples(index=False)
    ]  # built before the clock starts: dlt's own extract, normalise and load are timed
    pipeline = dlt.pipeline(
        pipeline_name="orderpulse_bench",
        pipelines_dir=workdir,
        destination=dlt.destinations.postgres(credentials=db.url()),
        dataset_name="bench_dlt",
    )
    began = time.perf_counter()
    pipeline.run(
        records, table_name="orders", write_disposition="merge",
        primary_key=("channel", "platform_order_no"),
    )  # fmt: skip
    seconds = time.perf_counter() - began
    return {
        "rows": len(frame),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(frame) / seconds),
    }
