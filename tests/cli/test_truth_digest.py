"""The demo's summary reads a digest of the sandbox's truth, made by a child interpreter: the
same per-channel totals and labelled orders as the whole file, without holding it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from orderpulse.demo import _truth_counts
from orderpulse.truth_digest import CHANNEL_TOTALS, read_digest
from sandbox.truth import truth_document
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_the_digest_counts_and_labels_as_the_whole_truth_does(tmp_path: Path) -> None:
    world = generate_world(seed=5, orders=1_500, days=2, end=END)
    truth = truth_document(world.orders)
    truth["incidents"] = [{"kind": "stock_diff", "sku": "SKU-1"}]
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")

    digest = read_digest(path)

    assert _truth_counts(digest) == _truth_counts(truth)
    counts, paid = _truth_counts(truth)
    assert len(counts) > 3 and sum(counts.values()) == 1_500 and all(paid.values())
    keys = ("channel", "platform_order_no", "labels")
    labelled = [{k: o[k] for k in keys} for o in truth["orders"] if o["labels"]]
    assert digest["orders"] == labelled
    assert 0 < len(labelled) < 1_500  # the unlabelled orders are left out
    assert digest["incidents"] == truth["incidents"]
    assert set(digest) == {"orders", "incidents", CHANNEL_TOTALS}
