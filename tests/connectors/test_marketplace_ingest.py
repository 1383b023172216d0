"""Every marketplace client against the sandbox's gateway over real HTTP, into a real PostgreSQL:
a multi-day pull with every fault kind switched on yields exactly the sandbox's truth for the
channel (nothing missing, nothing twice, status and paid amount as the truth's latest version,
clear receiver values through the platform's decrypt API); re-running a window changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from connectors.http import RetryPolicy, make_http_client
from connectors.ingest import ingest_channel
from connectors.marketplace import build_client
from connectors.raw_schema import ensure_raw_tables
from connectors.reconcile import reconcile_channel
from sandbox.model import MARKETPLACES
from tests.connectors import platform_truth
from tests.connectors.sandbox_env import ALL_FAULTS, SandboxEnv

# small pages, so that every window has several (page shifts and duplicates need a 2nd page)
PAGE_SIZE = {"pdd": 3, "kuaishou": 5, "youzan": 5}
# retry hints (1 s in the sandbox) are honoured up to 50 ms here: the HTTP layer's own test
# proves hints are honoured; this one is about completeness
FAST = RetryPolicy(attempts=10, initial_wait=0.01, max_wait=0.05, jitter=0.01, max_hint=0.05)


def _client(env: SandboxEnv, channel: str, http, page_size: int | None = None):  # noqa: ANN001, ANN202
    client = build_client(channel, env.credentials(channel), http, page_size=page_size)
    # the sandbox serves windows up to its own now; the platforms' "stay N minutes behind"
    # advice would only slow the test down (it stays the default outside tests)
    client.settle = timedelta(0)
    return client


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _raw(conn: psycopg.Connection, channel: str) -> dict[str, dict]:
    rows = conn.execute(f"select platform_order_no, payload from raw.{channel}_orders").fetchall()
    return {no: payload for no, payload in rows}


@pytest.mark.slow  # about 1 min for all six
@pytest.mark.parametrize("channel", MARKETPLACES)
def test_faulty_multi_day_pull_equals_truth(channel: str, fresh_db, sandbox_env_factory) -> None:
    env: SandboxEnv = sandbox_env_factory(faults={channel: ALL_FAULTS})
    truth = env.truth(channel)
    orders = env.orders(channel)
    assert len(truth) > 20, "the sandbox should publish a real multi-day set"
    with (
        make_http_client(timeout=0.5, policy=FAST) as http,
        psycopg.connect(fresh_db.url()) as conn,
    ):
        ensure_raw_tables(conn, [channel])
        client = _client(env, channel, http, page_size=PAGE_SIZE.get(channel, 20))
        first = ingest_channel(conn, client, lag=timedelta(minutes=5), backfill_days=env.days + 1)
        # orders moved by the page-shift fault carry a modified time after the first run's end:
        # the next scheduled run picks them up, as in production
        second = ingest_channel(conn, client, lag=timedelta(minutes=5), backfill_days=1)
        raw = _raw(conn, channel)
        count = conn.execute(f"select count(*) from raw.{channel}_orders").fetchone()[0]
        faults = env.fault_counts(channel)

    assert first.windows >= 1 and first.pages > 1
    # every fault kind really happened during the pull
    for kind in ("rate_limit", "server_error", "slow", "page_shift", "duplicates"):
        assert faults.get(kind, 0) > 0, f"{channel}: fault {kind} never fired: {faults}"
    assert first.refreshes + second.refreshes > 0
    assert first.retries > 0

    assert count == len(raw)
    assert set(raw) == set(truth), (
        f"missing {sorted(set(truth) - set(raw))[:5]}, extra {sorted(set(raw) - set(truth))[:5]}"
    )
    read = platform_truth.READERS[channel]
    wrong = []
    for no, payload in raw.items():
        status, paid = read(payload)
        expected = truth[no]
        if (status, paid) != (expected["status"], Decimal(expected["paid_amount"])):
            wrong.append((no, status, str(paid), expected["status"], expected["paid_amount"]))
    assert not wrong, f"{len(wrong)} orders differ from the truth, e.g. {wrong[:3]}"

    # clear receiver values came from the platform's decrypt API wherever it sent ciphertext
    decrypted, sealed = set(), set()
    for no, payload in raw.items():
        receiver = orders[no].receiver
        published = {k: v for k, v in payload.items() if k != "_decrypted"}
        if any(env.opened(channel, s) == receiver.phone for s in _strings(published)):
            sealed.add(no)
        clear = payload["_decrypted"]
        if clear["phone"] is None:
            continue
        assert (clear["name"], clear["phone"], clear["address"]) == (
            receiver.name,
            receiver.phone,
            receiver.address,
        )
        decrypted.add(no)
    # how many orders carry ciphertext depends on their state at pull time (the clock), so the
    # test asks for every sealed phone to be decrypted rather than for a share
    assert decrypted, "the gateway sent no receiver the client had to decrypt"
    assert sealed <= decrypted, f"sealed but not decrypted: {sorted(sealed - decrypted)[:5]}"


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_rerunning_a_window_leaves_raw_unchanged(
    channel: str, fresh_db, sandbox_env_factory
) -> None:
    env: SandboxEnv = sandbox_env_factory()
    end = datetime.now(UTC)
    start = end - timedelta(days=env.days + 1)
    with (
        make_http_client(timeout=5, policy=FAST) as http,
        psycopg.connect(fresh_db.url()) as conn,
    ):
        ensure_raw_tables(conn, [channel])
        client = _client(env, channel, http)

        def snapshot() -> list[tuple]:
            return conn.execute(
                f"select platform_order_no, content_hash, source_modified_at, loaded_at "
                f"from raw.{channel}_orders order by 1"
            ).fetchall()

        first = ingest_channel(conn, client, start=start, end=end, lag=timedelta(0))
        before = snapshot()
        again = ingest_channel(conn, client, start=start, end=end, lag=timedelta(0))
        after = snapshot()

        report = reconcile_channel(conn, client, hours=24 * (env.days + 1), now=end)
    assert len(before) == len(env.truth(channel)) == first.inserted
    assert (again.inserted, again.updated) == (0, 0) and again.unchanged == len(before)
    assert after == before  # same rows, same hashes, not even re-stamped
    # nothing was missed, so the reconciliation finds nothing either
    assert (report.fetched, report.missing, report.stale) == (len(before), 0, 0)


def test_reconciliation_counts_and_repairs_what_raw_missed(fresh_db, sandbox_env_factory) -> None:
    channel = "jd"
    env: SandboxEnv = sandbox_env_factory()
    now = datetime.now(UTC)
    with (
        make_http_client(timeout=5, policy=FAST) as http,
        psycopg.connect(fresh_db.url()) as conn,
    ):
        ensure_raw_tables(conn, [channel])
        client = _client(env, channel, http)
        ingest_channel(conn, client, now=now, lag=timedelta(0), backfill_days=env.days + 1)
        table = f"raw.{channel}_orders"
        total = conn.execute(f"select count(*) from {table}").fetchone()[0]
        # what a faulty incremental pull could have left: 3 orders absent, 2 an hour stale
        with conn.transaction():
            gone = [r[0] for r in conn.execute(f"select platform_order_no from {table} limit 3")]
            conn.execute(f"delete from {table} where platform_order_no = any(%s)", [gone])
            old = conn.execute(
                f"update {table} set source_modified_at = source_modified_at - interval '1 hour',"
                ' payload = payload || \'{"orderState": "WAIT_PAY"}\''
                " where platform_order_no in (select platform_order_no from "
                f"{table} order by 1 desc limit 2) returning platform_order_no"
            ).fetchall()
        # whole-history reconciliation: every order is in the window
        report = reconcile_channel(conn, client, hours=24 * (env.days + 1), now=now)
        after = conn.execute(f"select count(*) from {table}").fetchone()[0]
        stale_states = dict(
            conn.execute(
                f"select platform_order_no, payload->>'orderState' from {table}"
                " where platform_order_no = any(%s)",
                [[no for (no,) in old]],
            ).fetchall()
        )
        stored = conn.execute(
            "select channel, fetched, missing, stale, missed_sample from raw.reconciliation_runs"
        ).fetchall()
    assert (report.missing, report.stale, report.missed) == (3, 2, 5)
    assert set(report.missed_sample) == {*gone, *(no for (no,) in old)}
    assert after == total  # repaired
    # the stale rows now hold the platform's version again
    truth = env.truth(channel)
    assert len(stale_states) == 2
    for no, state in stale_states.items():
        assert (
            platform_truth.jd({"orderState": state, "orderPayment": "0"})[0] == truth[no]["status"]
        )
    assert stored == [(channel, total, 3, 2, report.missed_sample)]
