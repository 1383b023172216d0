"""The reconciliation every fault test ends with: raw holds each order of the sandbox's truth
exactly once, in its latest version (status and paid amount as the truth says), and nothing
else."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import psycopg

Reader = Callable[[dict[str, Any]], tuple[str, Decimal]]


def truth_of(rows: Iterable[dict], channel: str) -> dict[str, dict]:
    """The truth's orders of one channel by order number."""
    return {r["platform_order_no"]: r for r in rows if r["channel"] == channel}


def assert_raw_equals_truth(
    conn: psycopg.Connection, channel: str, truth: dict[str, dict], read: Reader
) -> int:
    """Every order once, none extra, each in the truth's latest version; returns the count."""
    rows = conn.execute(f"select platform_order_no, payload from raw.{channel}_orders").fetchall()
    numbers = [no for no, _ in rows]
    twice = sorted(no for no, n in Counter(numbers).items() if n > 1)
    assert not twice, f"{channel}: stored twice: {twice[:5]}"
    missing, extra = set(truth) - set(numbers), set(numbers) - set(truth)
    assert not missing and not extra, (
        f"{channel}: {len(missing)} missing, e.g. {sorted(missing)[:5]}; "
        f"{len(extra)} not in the truth, e.g. {sorted(extra)[:5]}"
    )
    stale = []
    for no, payload in rows:
        status, paid = read(payload)
        want = truth[no]
        if (status, paid) != (want["status"], Decimal(want["paid_amount"])):
            stale.append((no, status, str(paid), want["status"], want["paid_amount"]))
    assert not stale, f"{channel}: {len(stale)} orders not in their latest version: {stale[:3]}"
    return len(rows)
