"""DataFrames in and out of PostgreSQL, for the decision stores: one query into a frame, one
frame into a temp table by COPY (no per-row INSERT)."""

from __future__ import annotations

import pandas as pd
import psycopg


def read_frame(conn: psycopg.Connection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """The rows of `sql`, with the column names it returns."""
    with conn.cursor() as cur:
        cur.execute(sql, params or {})
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


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
