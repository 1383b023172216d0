"""The merchant's own systems' records, derived from the orders (filled in below)."""

from __future__ import annotations


def build_ops_records(world) -> None:  # noqa: ANN001
    return None
