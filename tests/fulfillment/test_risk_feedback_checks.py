"""The Great Expectations suite on `raw.risk_feedback` (the chargebacks and audits the learned
risk score trains on), on real PostgreSQL: a pull's good rows pass; a chargeback claiming
honest, an unknown kind, a feedback time in the future each fail with the row as sample; a
run checks only the rows it wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from connectors.raw_schema import BOOKKEEPING_DDL
from connectors.risk_feedback import DDL
from kernel.database import PgConn
from quality.expectations import targets
from quality.expectations.rules import load_data_check_rules, parameters
from quality.expectations.runner import Validator
from tests.databases import drop_database, new_database

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
RUN = "run-feedback"
TARGET = targets.risk_feedback()

GOOD = """
insert into raw.risk_feedback (feedback_id, channel, platform_order_no, kind, verdict,
    source_modified_at, payload, content_hash, loaded_at, run_id)
select 'F' || g, 'taobao', 'T' || g, case when mod(g, 3) = 0 then 'audit' else 'chargeback' end,
    case when mod(g, 3) = 0 then 'honest' when mod(g, 2) = 0 then 'coupon_abuse' else 'fraud' end,
    %(now)s - g * interval '1 hour', '{}', md5(g::text), %(now)s, %(run)s
from generate_series(1, 30) g
"""


@pytest.fixture(scope="module")
def warehouse(pg: PgConn) -> Iterator[PgConn]:
    conn = new_database(pg, "gx_feedback_")
    with psycopg.connect(conn.url(), autocommit=True) as db:
        db.execute(BOOKKEEPING_DDL.format())
        db.execute(DDL)
        db.execute(GOOD, {"now": NOW, "run": RUN})
    yield conn
    drop_database(pg, conn)


@pytest.fixture(scope="module")
def validator(warehouse: PgConn) -> Validator:
    return Validator(warehouse.url())


def _validate(warehouse: PgConn, validator: Validator, bad: str | None = None, run_id=RUN):  # noqa: ANN001, ANN202
    with psycopg.connect(warehouse.url(), autocommit=True) as db:
        if bad:
            db.execute(
                "insert into raw.risk_feedback (feedback_id, channel, platform_order_no, kind, "
                f"verdict, source_modified_at, payload, content_hash, loaded_at, run_id) {bad}",
                {"now": NOW},
            )
        try:
            params = parameters(load_data_check_rules(), NOW)
            return validator.validate(TARGET, params, run_id=run_id)
        finally:
            db.execute("delete from raw.risk_feedback where feedback_id like 'BAD%%'")


BAD = {
    "a chargeback claiming honest": (
        "values ('BAD1', 'jd', 'J1', 'chargeback', 'honest', %(now)s, '{}', 'h', %(now)s, "
        f"'{RUN}')",
        {"expect_column_values_to_be_in_set(claim)"},
    ),
    "an unknown kind": (
        "values ('BAD2', 'jd', 'J2', 'refund', 'fraud', %(now)s, '{}', 'h', %(now)s, "
        f"'{RUN}')",
        {"expect_column_values_to_be_in_set(kind)", "expect_column_values_to_be_in_set(claim)"},
    ),
    "a feedback time in the future": (
        "values ('BAD3', 'jd', 'J3', 'audit', 'fraud', %(now)s + interval '2 days', '{}', 'h', "
        f"%(now)s, '{RUN}')",
        {"expect_column_values_to_be_between(source_modified_at)"},
    ),
}  # fmt: skip


def test_a_pulls_good_rows_pass_and_each_bad_row_fails_with_its_key(
    warehouse: PgConn, validator: Validator
) -> None:
    good = _validate(warehouse, validator)
    assert good.success and good.failed == [] and good.rows_checked == 30
    for kind, (row, expected) in BAD.items():
        result = _validate(warehouse, validator, row)
        assert {o.expectation for o in result.failed} == expected, kind
        for outcome in result.failed:
            assert outcome.samples[0]["feedback_id"].startswith("BAD"), kind
    # a bad row an earlier run wrote is not this run's: the run's check passes, a full one fails
    earlier = BAD["an unknown kind"][0].replace(f"'{RUN}'", "'run-before'")
    assert _validate(warehouse, validator, earlier).success
    assert not _validate(warehouse, validator, earlier, run_id=None).success
