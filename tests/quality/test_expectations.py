"""The Great Expectations suites on real PostgreSQL: they pass on good rows and fail on each
kind of bad row with the failing expectation and the row's keys in the result; they check
the rows a run wrote; nothing lands in the repository or the working directory.

One database and one GX context for the module (GX takes seconds to import)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from connectors.raw_schema import ensure_raw_tables
from kernel.config import ConfigError
from kernel.database import PgConn
from quality.expectations import targets
from quality.expectations.rules import load_data_check_rules, parameters
from quality.expectations.runner import GX_DIR, Validator, mask, suite_names
from tests.databases import drop_database, new_database

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
RUN = "run-good"
BUILD_XID = 1000  # the latest dbt build of the marts (intermediate.model_builds)
RULES = load_data_check_rules()

MART_DDL = """
create table marts.fct_orders (
    channel text, platform_order_no text, unified_status text, goods_value numeric,
    discount_amount numeric, freight numeric, paid_amount numeric, created_at timestamptz,
    paid_at timestamptz, modified_at timestamptz, receiver_phone text, _written_xid bigint
);
create table marts.order_holographic (like marts.fct_orders);
create table marts.fct_order_items (
    channel text, platform_order_no text, line_no int, sku text, qty int, unit_price numeric,
    line_goods_value numeric, _written_xid bigint
);
create table intermediate.int_orders_awaiting_allocation (
    channel text, platform_order_no text, goods_value numeric, freight numeric,
    paid_at timestamptz, modified_at timestamptz, _written_xid bigint
);
create table intermediate.model_builds (
    model text primary key, built_xid bigint not null, previous_built_xid bigint,
    built_at timestamptz not null, invocation_id text
);
"""

GOOD_ROWS = """
insert into raw.taobao_orders
    (channel, platform_order_no, source_modified_at, payload, content_hash, loaded_at, run_id)
select 'taobao', 'T' || g, %(now)s - g * interval '1 minute', '{}', md5(g::text), %(now)s, %(run)s
from generate_series(1, 50) g;
insert into marts.fct_orders
select 'taobao', 'T' || g, 'paid_pending_review', 100 + g, 5, 8, 103 + g,
       %(now)s - interval '2 hours', %(now)s - interval '1 hour', %(now)s, '138****5678', %(xid)s
from generate_series(1, 50) g;
insert into marts.order_holographic select * from marts.fct_orders;
insert into marts.fct_order_items
select 'taobao', 'T' || g, 1, 'SKU' || g, 2, 50 + g / 2.0, 100 + g, %(xid)s
from generate_series(1, 50) g;
insert into intermediate.int_orders_awaiting_allocation
select 'taobao', 'T' || g, 100 + g, 8, %(now)s - interval '1 hour', %(now)s, %(xid)s
from generate_series(1, 50) g;
insert into intermediate.model_builds values
    ('"w"."marts"."fct_orders"', %(xid)s, null, %(now)s, 'i1'),
    ('"w"."marts"."fct_order_items"', %(xid)s, null, %(now)s, 'i1'),
    ('"w"."intermediate"."int_orders"', %(xid)s, null, %(now)s, 'i1');
"""


@pytest.fixture(scope="module")
def warehouse(pg: PgConn) -> Iterator[PgConn]:
    conn = new_database(pg, "gx_")
    with psycopg.connect(conn.url(), autocommit=True) as db:
        ensure_raw_tables(db, ["taobao"])
        db.execute(MART_DDL, prepare=False)
        with db.cursor() as cur:
            for statement in filter(str.strip, GOOD_ROWS.split(";")):
                cur.execute(statement, {"now": NOW, "run": RUN, "xid": BUILD_XID})
    yield conn
    drop_database(pg, conn)


@pytest.fixture(scope="module")
def validator(warehouse: PgConn) -> Validator:
    return Validator(warehouse.url())


@pytest.fixture()
def db(warehouse: PgConn) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        yield conn


def params(**extra) -> dict:
    return parameters(RULES, NOW, channel="taobao", **extra)


def test_every_suite_passes_on_good_rows(validator: Validator) -> None:
    checked = [
        (targets.raw_orders("taobao"), RUN),
        (targets.raw_orders_volume("taobao"), None),
        *[(t, RUN) for t in targets.MART_TARGETS.values()],
    ]
    for target, run_id in checked:
        result = validator.validate(target, params(previous_row_count=50), run_id=run_id)
        assert result.success, result.as_dict()
        assert result.failed == []
        assert len(result.outcomes) >= 2


BAD_ROWS = {
    "duplicate key": (
        targets.MART_TARGETS["intermediate.int_orders_awaiting_allocation"],
        "insert into intermediate.int_orders_awaiting_allocation "
        "values ('taobao', 'T7', 99, 8, %(now)s - interval '1 hour', %(now)s, %(xid)s)",
        "delete from intermediate.int_orders_awaiting_allocation "
        "where platform_order_no = 'T7' and goods_value = 99",
        "expect_compound_columns_to_be_unique(channel,platform_order_no)",
        "T7",
    ),
    "negative amount": (
        targets.MART_TARGETS["marts.fct_orders"],
        "insert into marts.fct_orders select channel, 'NEG1', unified_status, -5, 0, 0, -5, "
        "created_at, paid_at, modified_at, receiver_phone, _written_xid "
        "from marts.fct_orders where platform_order_no = 'T1'",
        "delete from marts.fct_orders where platform_order_no = 'NEG1'",
        {"expect_column_values_to_be_between(goods_value)",
         "expect_column_values_to_be_between(paid_amount)"},
        "NEG1",
    ),
    "future timestamp": (
        targets.raw_orders("taobao"),
        "insert into raw.taobao_orders (channel, platform_order_no, source_modified_at, payload, "
        "content_hash, loaded_at, run_id) values ('taobao', 'FUT1', %(now)s + interval '2 days',"
        " '{}', 'h', %(now)s, 'run-good')",
        "delete from raw.taobao_orders where platform_order_no = 'FUT1'",
        "expect_column_values_to_be_between(source_modified_at)",
        "FUT1",
    ),
    "unknown status": (
        targets.MART_TARGETS["marts.fct_orders"],
        "insert into marts.fct_orders select channel, 'ST1', 'shipped', goods_value, "
        "discount_amount, freight, paid_amount, created_at, paid_at, modified_at, "
        "receiver_phone, _written_xid from marts.fct_orders where platform_order_no = 'T1'",
        "delete from marts.fct_orders where platform_order_no = 'ST1'",
        "expect_column_values_to_be_in_set(unified_status)",
        "ST1",
    ),
    "orphan item": (
        targets.MART_TARGETS["marts.fct_order_items"],
        "insert into marts.fct_order_items values "
        "('taobao', 'ORPHAN1', 1, 'SKU1', 1, 10, 10, %(xid)s)",
        "delete from marts.fct_order_items where platform_order_no = 'ORPHAN1'",
        "expect_column_values_to_not_be_null(parent_order_no)",
        "ORPHAN1",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_a_bad_row_fails_its_expectation_with_the_row_as_sample(
    kind: str, validator: Validator, db: psycopg.Connection
) -> None:
    target, insert, delete, expected, order_no = BAD_ROWS[kind]
    db.execute(insert, {"now": NOW, "xid": BUILD_XID + 1})
    try:
        result = validator.validate(target, params(), run_id=RUN)
    finally:
        db.execute(delete)
    assert not result.success
    failed = {o.expectation for o in result.failed}
    assert failed == ({expected} if isinstance(expected, str) else expected), result.as_dict()
    for outcome in result.failed:
        assert outcome.observed["unexpected_count"] >= 1
        assert order_no in {s["platform_order_no"] for s in outcome.samples}
        assert outcome.why
    assert all(name in result.summary() for name in failed)


def test_a_run_checks_the_rows_it_wrote_and_a_full_check_every_row(
    validator: Validator, db: psycopg.Connection
) -> None:
    # bad rows written by an earlier run / an earlier dbt build
    db.execute(
        "insert into raw.taobao_orders (channel, platform_order_no, source_modified_at, payload,"
        " content_hash, loaded_at, run_id) values ('taobao', 'OLD1', '1999-12-31', '{}', 'h',"
        " %(now)s, 'run-before')",
        {"now": NOW},
    )
    db.execute(
        "insert into marts.fct_orders (channel, platform_order_no, unified_status, goods_value,"
        " created_at, _written_xid) values ('taobao', 'OLD2', 'closed', -1, %(now)s, %(xid)s)",
        {"now": NOW, "xid": BUILD_XID - 1},
    )
    try:
        raw, mart = targets.raw_orders("taobao"), targets.MART_TARGETS["marts.fct_orders"]
        assert validator.validate(raw, params(), run_id=RUN).success
        scoped = validator.validate(mart, params(), run_id=RUN)
        assert scoped.success and scoped.rows_checked == 50
        assert scoped.scope == f"rows written since xid {BUILD_XID}"
        whole = validator.validate(raw, params(), run_id=None)
        assert not whole.success and whole.rows_checked == 51
        assert whole.failed[0].samples[0]["platform_order_no"] == "OLD1"
        assert not validator.validate(mart, params(), run_id=None).success
    finally:
        db.execute("delete from raw.taobao_orders where platform_order_no = 'OLD1'")
        db.execute("delete from marts.fct_orders where platform_order_no = 'OLD2'")


def test_a_validation_counts_in_postgresql_and_fetches_no_checked_row(
    validator: Validator,
) -> None:
    """Every count is an aggregate PostgreSQL answers; no row of the scope comes into the
    process. GX learns a query's column names by running it bare, which fetched every row
    (1,763,194 order lines at 1,000,000 orders: 1.6 s and ~360 MiB of a check): the runner
    has it answered from no rows."""
    from sqlalchemy import event

    engine = validator._source.get_execution_engine().engine
    fetched: list[tuple[int, str]] = []

    def _count(_conn, cursor, statement: str, *_args) -> None:
        fetched.append((cursor.rowcount, statement))

    event.listen(engine, "after_cursor_execute", _count)
    try:
        mart = targets.MART_TARGETS["marts.fct_order_items"]
        result = validator.validate(mart, params(), run_id=None)
    finally:
        event.remove(engine, "after_cursor_execute", _count)
    assert result.success and result.rows_checked == 50, result.as_dict()
    assert any(mart.select in statement for _, statement in fetched)
    assert all(rows <= 1 for rows, _ in fetched), [f for f in fetched if f[0] > 1]
    # the outcome of every expectation is still there
    assert {o.expectation for o in result.outcomes} == {
        o.expectation for o in validator.validate(mart, params(), run_id=RUN).outcomes
    }


def test_a_build_that_wrote_every_row_is_read_whole(
    validator: Validator, db: psycopg.Connection
) -> None:
    """After a first build or a full refresh every row is the build's: the check reads the
    table without the `_written_xid` condition (through that index, a table written minutes
    before cost a heap fetch per row: 8.0 s against 1.2 s for fct_orders at 1,000,000). With
    one row older than the build, the condition is back and that row is not read."""
    from sqlalchemy import event

    engine = validator._source.get_execution_engine().engine
    statements: list[str] = []

    def _record(_conn, _cursor, statement: str, *_args) -> None:
        statements.append(statement)

    mart = targets.MART_TARGETS["marts.fct_order_items"]
    event.listen(engine, "after_cursor_execute", _record)
    try:
        whole = validator.validate(mart, params(), run_id=RUN)
        read_whole = [s for s in statements if mart.select in s]
        statements.clear()
        db.execute(
            "insert into marts.fct_order_items values"
            " ('taobao', 'T1', 9, 'OLDSKU', -1, 1, 1, %(xid)s)",
            {"xid": BUILD_XID - 1},
        )
        scoped = validator.validate(mart, params(), run_id=RUN)
        read_scoped = [s for s in statements if mart.select in s]
    finally:
        event.remove(engine, "after_cursor_execute", _record)
        db.execute("delete from marts.fct_order_items where sku = 'OLDSKU'")
    assert whole.success and whole.rows_checked == 50
    assert whole.scope == f"rows written since xid {BUILD_XID}: every row"
    assert read_whole and not any("_written_xid" in s for s in read_whole)
    # the older line breaks the qty rule, but is not this build's
    assert scoped.success and scoped.rows_checked == 50
    assert scoped.scope == f"rows written since xid {BUILD_XID}"
    assert read_scoped and all("_written_xid >= " in s for s in read_scoped)


def test_the_view_routing_reads_is_checked_on_the_orders_int_orders_last_wrote(
    validator: Validator, db: psycopg.Connection
) -> None:
    """`int_orders_awaiting_allocation` is a view over int_orders: a run checks the rows of the
    orders int_orders' latest build wrote (the orders routing decides anew), by int_orders'
    `_written_xid`; a full check reads every row."""
    target = targets.MART_TARGETS["intermediate.int_orders_awaiting_allocation"]
    insert = (
        "insert into intermediate.int_orders_awaiting_allocation values "
        "('taobao', %(no)s, -1, 0, %(now)s, %(now)s, %(xid)s)"
    )
    db.execute(insert, {"no": "OLDNEG", "now": NOW, "xid": BUILD_XID - 1})
    try:
        scoped = validator.validate(target, params(), run_id=RUN)
        assert scoped.success and scoped.rows_checked == 50
        assert scoped.scope == f"rows written since xid {BUILD_XID}"
        assert not validator.validate(target, params(), run_id=None).success
        db.execute(insert, {"no": "NEWNEG", "now": NOW, "xid": BUILD_XID + 1})
        fresh = validator.validate(target, params(), run_id=RUN)
        assert not fresh.success and fresh.rows_checked == 51
        samples = {s["platform_order_no"] for o in fresh.failed for s in o.samples}
        assert samples == {"NEWNEG"}
    finally:
        db.execute(
            "delete from intermediate.int_orders_awaiting_allocation "
            "where platform_order_no in ('OLDNEG', 'NEWNEG')"
        )


def test_volume_fails_on_a_row_count_drop_and_on_a_quiet_channel(validator: Validator) -> None:
    target = targets.raw_orders_volume("taobao")
    dropped = validator.validate(target, params(previous_row_count=1000))
    assert [o.expectation for o in dropped.failed] == ["expect_table_row_count_to_be_between"]
    assert dropped.failed[0].observed["observed_value"] == 50
    # 7 hours without a new row: taobao's quiet time is the default 6 h
    later = parameters(RULES, NOW + timedelta(hours=7), channel="taobao")
    quiet = validator.validate(target, later)
    assert [o.expectation for o in quiet.failed] == ["expect_column_max_to_be_between(loaded_at)"]
    assert quiet.failed[0].observed["observed_value"] == NOW.isoformat()
    # the first check of a table has no previous count: any count passes
    assert validator.validate(target, params()).success


def test_samples_mask_phone_numbers_and_nothing_is_written_to_repo_or_cwd(
    validator: Validator, db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sorted(p for p in GX_DIR.rglob("*"))
    monkeypatch.chdir(tmp_path)
    db.execute(
        "insert into intermediate.int_orders_awaiting_allocation values "
        "('taobao', '13812345678', -1, 0, %(now)s, %(now)s, %(xid)s)",
        {"now": NOW, "xid": BUILD_XID},
    )
    try:
        result = validator.validate(
            targets.MART_TARGETS["intermediate.int_orders_awaiting_allocation"], params()
        )
    finally:
        db.execute(
            "delete from intermediate.int_orders_awaiting_allocation "
            "where platform_order_no = '13812345678'"
        )
    text = json.dumps(result.as_dict(), ensure_ascii=False)
    assert "13812345678" not in text and "138****5678" in text
    assert mask({"note": "call 13912345678", "n": 3}) == {"note": "call 139****5678", "n": 3}
    assert list(tmp_path.iterdir()) == []
    assert sorted(p for p in GX_DIR.rglob("*")) == before


def test_the_repo_holds_a_gx_file_context_with_a_suite_for_every_target(
    validator: Validator, tmp_path: Path
) -> None:
    import great_expectations as gx

    # opened as GX opens a file context (on a copy: opening writes state beside it)
    shutil.copytree(GX_DIR, tmp_path / "gx")
    context = gx.get_context(mode="file", project_root_dir=tmp_path)
    assert sorted(s.name for s in context.suites.all()) == suite_names()
    assert all(s.expectations for s in context.suites.all())
    assert context.variables.analytics_enabled is False
    wanted = {targets.raw_orders("x").suite, targets.raw_orders_volume("x").suite}
    wanted |= {targets.merchant_table(t).suite for t in targets.MERCHANT_TABLES}
    wanted |= {t.suite for t in targets.MART_TARGETS.values()}
    wanted.add(targets.risk_feedback().suite)
    assert wanted == set(suite_names())


def test_a_broken_rules_file_names_file_key_and_value(tmp_path: Path) -> None:
    broken = tmp_path / "data_checks.yaml"
    text = (Path(__file__).resolve().parents[2] / "config" / "data_checks.yaml").read_text()
    broken.write_text(text.replace("max_yuan: 1000000", "max_yuan: -3"))
    with pytest.raises(ConfigError) as err:
        load_data_check_rules(broken)
    assert f"{broken}: amounts.max_yuan" in str(err.value) and "-3" in str(err.value)
    with pytest.raises(ValueError, match="timezone"):
        parameters(RULES, datetime(2026, 12, 4))


def test_rows_written_while_a_suite_runs_do_not_make_its_counts_disagree(
    validator: Validator, warehouse: PgConn
) -> None:
    """GX answers a suite with many queries; a push that lands between two of them (live mode)
    made GX count 66 rows but 67 non-null keys and fail the key-unique expectation. Here a
    row is committed by another connection after GX's first query of the validation."""
    from sqlalchemy import event

    engine = validator._source.get_execution_engine().engine
    landed: list[str] = []

    def _land_a_row(_conn, _cursor, statement: str, *_args) -> None:
        if landed or "transaction" in statement or "pg_export_snapshot" in statement:
            return  # the validation's own snapshot set-up, not one of GX's queries
        landed.append("PUSHED1")
        with psycopg.connect(warehouse.url(), autocommit=True) as other:
            other.execute(
                "insert into raw.taobao_orders (channel, platform_order_no, source_modified_at,"
                " payload, content_hash, loaded_at, run_id)"
                " values ('taobao', 'PUSHED1', %(now)s, '{}', 'h', %(now)s, 'sensor:push')",
                {"now": NOW},
            )

    event.listen(engine, "after_cursor_execute", _land_a_row)
    try:
        result = validator.validate(targets.raw_orders("taobao"), params(), run_id=None)
    finally:
        event.remove(engine, "after_cursor_execute", _land_a_row)
        with psycopg.connect(warehouse.url(), autocommit=True) as db:
            db.execute("delete from raw.taobao_orders where platform_order_no = 'PUSHED1'")
    assert landed, "no query ran"
    assert result.success, result.as_dict()
    # the validation read the table as it was when it started
    assert result.rows_checked == 50
