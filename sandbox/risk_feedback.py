"""What the merchant learns later about orders that shipped: platform chargebacks and disputes
(拒付 / 盗刷申诉, the platform clawing back a coupon subsidy from a farmer) and the verdicts of
a random audit of shipped orders (抽检), reviewed after the fact by the sandbox reviewer.

`draw_risk_feedback(world)` returns the `RiskFeedback` records (sorted by `reported_at`, ids
following that order), drawn from the hidden verdicts (`fraud`, `coupon_abuse` in
`Order.labels`), never from the rule signals. The generative story (`CHARGEBACK`, `AUDIT`):
- only orders that shipped (a `ship` event) get feedback: an order closed before shipping
  leaves nobody to complain;
- a chargeback comes for a fraud order with p 0.6 (the card's owner disputes it), for a
  coupon-abuse order with p 0.45 (the platform claws its subsidy back), and for an honest
  order with p 0.0015 ("friendly fraud": a buyer disputing a purchase they made; it claims
  `fraud` like a real one);
- it is reported 1 day + Gamma(shape 2, 1 day) after payment (median 2.7 days, 1.7 % later
  than 7 days), never before the shipment, and only once that time has come (<= world end);
- an audit reviews 2 % of the shipped orders 1-3 days after shipment; the reviewer names a
  bad order's verdict with p 0.85 (else calls it honest) and calls an honest order `fraud`
  with p 0.01.
The draws come from their own generator (world seed + a fixed salt) over the orders in the
world's order, so every other draw of the world stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sandbox.world import World

SALT = 0x5249534B  # "RISK"
DAY = 86400.0
# P(chargeback | verdict); "" = honest
CHARGEBACK = {"fraud": 0.6, "coupon_abuse": 0.45, "": 0.0015}
CHARGEBACK_DELAY = (1.0, 2.0, 1.0)  # days: offset, gamma shape, gamma scale
AUDIT = {"share": 0.02, "delay_days": (1.0, 3.0), "bad_found": 0.85, "honest_flagged": 0.01}
REASONS = {"fraud": "unauthorized_payment", "coupon_abuse": "coupon_clawback"}


@dataclass(frozen=True, slots=True)
class RiskFeedback:
    feedback_id: str
    kind: str  # chargeback | audit
    channel: str
    platform_order_no: str
    reported_at: datetime
    verdict: str  # fraud | coupon_abuse | honest (a chargeback always claims one of the first two)
    reason: str  # unauthorized_payment | coupon_clawback | audit
    amount: Decimal  # yuan: the disputed payment (the order's paid amount)


def _verdict(labels: list[str]) -> str:
    return "fraud" if "fraud" in labels else "coupon_abuse" if "coupon_abuse" in labels else ""


def draw_risk_feedback(world: World) -> list[RiskFeedback]:
    """The chargebacks and audit verdicts of `world`'s shipped orders, reported by its end."""
    end = world.end.timestamp()
    shipped = []
    for o in world.orders:
        ship = next((e.at for e in o.events if e.type == "ship"), None)
        if o.paid_at is not None and ship is not None and ship.timestamp() <= end:
            shipped.append((o, o.paid_at.timestamp(), ship.timestamp(), _verdict(o.labels)))
    if not shipped:
        return []
    rng = np.random.default_rng([world.seed, SALT])
    n = len(shipped)
    paid = np.array([s[1] for s in shipped])
    ship = np.array([s[2] for s in shipped])
    verdict = np.array([s[3] for s in shipped], dtype=object)
    # chargebacks: by the hidden verdict, with friendly fraud on honest orders
    p = np.vectorize(CHARGEBACK.__getitem__, otypes=[float])(verdict)
    offset, shape, scale = CHARGEBACK_DELAY
    delay = (offset + rng.gamma(shape, scale, n)) * DAY
    charged = rng.random(n) < p
    charged_at = np.maximum(paid + delay, ship + 3600.0)
    claim = np.where(verdict == "", "fraud", verdict)
    # audits: a random sample of shipped orders, the reviewer right most of the time
    lo, hi = AUDIT["delay_days"]
    audited = rng.random(n) < AUDIT["share"]
    audited_at = ship + rng.uniform(lo, hi, n) * DAY
    right = rng.random(n)
    bad = verdict != ""
    found = np.where(
        bad,
        np.where(right < AUDIT["bad_found"], verdict, "honest"),
        np.where(right < AUDIT["honest_flagged"], "fraud", "honest"),
    )
    rows = []
    for i in np.flatnonzero(charged & (charged_at <= end)):
        rows.append((charged_at[i], "chargeback", i, claim[i], REASONS[claim[i]]))
    for i in np.flatnonzero(audited & (audited_at <= end)):
        rows.append((audited_at[i], "audit", i, found[i], "audit"))
    rows.sort(key=lambda r: (r[0], r[1], shipped[r[2]][0].platform_order_no))
    out = []
    for k, (at, kind, i, said, reason) in enumerate(rows, start=1):
        order = shipped[i][0]
        out.append(
            RiskFeedback(
                feedback_id=f"RF{k:08d}",
                kind=kind,
                channel=order.channel,
                platform_order_no=order.platform_order_no,
                reported_at=datetime.fromtimestamp(round(float(at)), UTC),
                verdict=str(said),
                reason=reason,
                amount=order.paid_amount,
            )
        )
    return out
