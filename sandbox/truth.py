"""Ground truth: what the sandbox published, in the design's contract form.

`{"orders": [{"channel", "platform_order_no", "status", "goods_value", "paid_amount",
"labels": [...]}]}`: every published order exactly once (sorted by channel and order number),
`status` one of the 12 unified statuses as the platforms and carriers determine it, amounts as
decimal strings in yuan, `labels` the injected anomalies (sorted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from sandbox.model import Order


def truth_document(orders: Iterable[Order]) -> dict:
    """The truth of `orders`; raises ValueError if an order key appears twice."""
    rows = [o.truth() for o in orders]
    rows.sort(key=lambda r: (r["channel"], r["platform_order_no"]))
    for a, b in zip(rows, rows[1:], strict=False):
        if (a["channel"], a["platform_order_no"]) == (b["channel"], b["platform_order_no"]):
            raise ValueError(
                f"order {a['channel']}/{a['platform_order_no']} appears twice; "
                "order numbers must be unique per channel"
            )
    return {"orders": rows}


def write_truth(path: str | Path, orders: Iterable[Order]) -> Path:
    """Write the truth document as UTF-8 JSON (atomically: a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(truth_document(orders), ensure_ascii=False, indent=1), "utf-8")
    tmp.replace(path)
    return path
