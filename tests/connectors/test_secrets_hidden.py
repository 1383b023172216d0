"""Secrets never reach logs, exception text or the raw tables, even on a failing run: every
client is given credentials the sandbox refuses, the run fails with an IngestError naming the
channel, window and platform code, and neither the captured logs (httpx's request log included)
nor the error nor the credentials' repr contain any secret."""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
import pytest
from pydantic import SecretStr

from connectors.credentials import secret_fields
from connectors.http import IngestError, RetryPolicy, make_http_client
from connectors.ingest import ingest_channel
from connectors.marketplace import build_client
from connectors.raw_schema import ensure_raw_tables
from sandbox.model import MARKETPLACES

FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02, jitter=0.01, max_hint=0.02)


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_failing_run_leaks_no_secret(channel, fresh_db, sandbox_env_factory, caplog) -> None:  # noqa: ANN001
    env = sandbox_env_factory()
    creds = env.credentials(channel)
    real = {k: v.get_secret_value() for k, v in creds.items() if isinstance(v, SecretStr)}
    assert set(real) <= secret_fields() and real
    # a wrong signing secret where the platform signs; where it does not (Youzan), a wrong
    # access token (sent in the URL, which httpx logs) and a wrong refresh token
    broken = dict(creds)
    field = next(f for f in ("sign_secret", "app_secret", "client_secret") if f in creds)
    if channel == "youzan":
        field = "access_token"
    broken[field] = SecretStr(real[field] + "-WRONG")
    if channel == "youzan":
        broken["refresh_token"] = SecretStr(real["refresh_token"] + "-WRONG")
    secrets = {*real.values(), real[field] + "-WRONG", real.get("refresh_token", "") + "-WRONG"}

    caplog.set_level(logging.DEBUG)
    with (
        make_http_client(timeout=5, policy=FAST) as http,
        psycopg.connect(fresh_db.url()) as conn,
    ):
        ensure_raw_tables(conn, [channel])
        client = build_client(channel, broken, http)
        with pytest.raises(IngestError) as caught:
            ingest_channel(conn, client, lag=timedelta(minutes=5), backfill_days=1)
        payloads = conn.execute(f"select payload::text from raw.{channel}_orders").fetchall()
    err = caught.value
    assert err.channel == channel and err.window is not None and err.code
    text = "\n".join([caplog.text, str(err), repr(err), repr(broken), repr(creds), str(payloads)])
    assert "HTTP Request" in caplog.text  # the request log was captured (and scrubbed)
    for secret in secrets:
        if secret and len(secret) >= 6:
            assert secret not in text, f"{channel}: a secret leaked"
