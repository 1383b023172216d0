"""Promise accuracy: how many shipped decisions were delivered by their promised time.

The deliveries come from outside (the sandbox's played futures of the allocations sent to its
WMS, `truth["deliveries"]`, or the carriers' tracking once it arrives); this module only reads
the promises OrderPulse stored and compares. `score_promises` is pure; `read_promises` reads
`ops.routing_decisions` (ship and split decisions, main part, with a promise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg

from fulfillment.frames import read_frame

KEY = ["channel", "platform_order_no"]

_PROMISES = """
select channel, platform_order_no, warehouse_id, carrier, decided_at, promised_delivery_at
from ops.routing_decisions
where decision in ('ship', 'split') and part = 0 and promised_delivery_at is not null
"""


@dataclass(frozen=True)
class PromiseAccuracy:
    """`orders` promises with a delivery; `on_time_share` of them delivered by the promised
    time; `mean_slack_days` = mean(promised − delivered) in days (negative: late on average);
    `undelivered`: promises without a delivery (not played, or not delivered yet)."""

    orders: int
    on_time_share: float
    mean_slack_days: float
    undelivered: int

    def sentence(self) -> str:
        if not self.orders:
            return f"promise: no delivery to compare yet ({self.undelivered:,} promises open)"
        return (
            f"promise: {self.on_time_share:.1%} of {self.orders:,} delivered by the promised "
            f"time, mean slack {self.mean_slack_days:.2f} d"
        )


def read_promises(conn: psycopg.Connection) -> pd.DataFrame:
    """channel, platform_order_no, warehouse_id, carrier, decided_at, promised_delivery_at of
    every shipped decision with a promise."""
    return read_frame(conn, _PROMISES)


def score_promises(promises: pd.DataFrame, deliveries: pd.DataFrame) -> PromiseAccuracy:
    """Compare promises (channel, platform_order_no, promised_delivery_at) with deliveries
    (channel, platform_order_no, delivered_at; timestamps with an offset or ISO strings). When
    both carry warehouse_id and carrier, a delivery of another allocation than the promise's
    does not count (the order was decided again since)."""
    cols = [*KEY, "delivered_at"]
    same = [c for c in ("warehouse_id", "carrier") if c in promises and c in deliveries]
    got = promises.merge(
        deliveries[cols + same].drop_duplicates(KEY, keep="last"), on=KEY + same, how="left"
    )
    promised = pd.to_datetime(got["promised_delivery_at"], utc=True, format="ISO8601")
    delivered = pd.to_datetime(got["delivered_at"], utc=True, format="ISO8601")
    done = delivered.notna().to_numpy()
    slack_days = ((promised - delivered).dt.total_seconds() / 86400).to_numpy(float)[done]
    return PromiseAccuracy(
        orders=int(done.sum()),
        on_time_share=float((slack_days >= 0).mean()) if done.any() else float("nan"),
        mean_slack_days=float(np.mean(slack_days)) if done.any() else float("nan"),
        undelivered=int((~done).sum()),
    )
