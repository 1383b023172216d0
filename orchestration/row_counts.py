"""Row counts for the metadata of a materialisation (`dagster/row_count`, `rows_in_table`):
exact on a table of fewer than `ESTIMATE_FROM` rows, PostgreSQL's own estimate on a larger one.

`count(*)` reads every page of the table (or of an index, where the visibility map allows):
every materialisation of a 10,000-order cycle at 1,000,000 orders counted its table, 77
counts, 17.2 s of statement time and 4.5 GB of pages read (the largest tables 1-4 s each when
the pages are not cached). The estimate is the planner's: the rows per page of the last
ANALYZE (every dbt table after its build; an incremental model after a build that wrote rows;
a raw table after a large pull or by autovacuum) times the table's pages now, within 1 % of
the count on the marts at 1,000,000 orders and up to 6 % above it on a raw table whose
upserts have left dead rows not yet vacuumed. The metadata says which it is
(`row_count_estimated`).
"""

from __future__ import annotations

import dagster as dg
import psycopg

ESTIMATE_FROM = 500_000

ESTIMATE_SQL = """
select c.reltuples, c.relpages,
       pg_relation_size(c.oid) / current_setting('block_size')::integer as pages
from pg_class as c
where c.oid = %s::regclass
"""


def row_count(conn: psycopg.Connection, relation: str) -> tuple[int, bool]:
    """(rows, exact) of `relation` (a quoted or plain `schema.table`)."""
    reltuples, relpages, pages = conn.execute(ESTIMATE_SQL, [relation]).fetchone()
    if reltuples >= 0 and relpages > 0:  # -1 / 0: never analysed or vacuumed, no estimate
        estimate = round(reltuples / relpages * pages)
        if estimate >= ESTIMATE_FROM:
            return estimate, False
    return conn.execute(f"select count(*) from {relation}").fetchone()[0], True


def row_count_metadata(
    conn: psycopg.Connection, relation: str, key: str = "dagster/row_count"
) -> dict[str, dg.MetadataValue]:
    """`{key: rows}`, and `row_count_estimated: True` when the figure is the estimate."""
    rows, exact = row_count(conn, relation)
    meta: dict[str, dg.MetadataValue] = {key: dg.MetadataValue.int(rows)}
    if not exact:
        meta["row_count_estimated"] = dg.MetadataValue.bool(True)
    return meta
