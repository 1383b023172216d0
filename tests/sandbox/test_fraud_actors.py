"""The sandbox's latent risk truth (sandbox/fraud_actors.py): hidden verdicts beside the signal
labels, bad orders that show a signal only sometimes, honest orders that show one too."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from sandbox.world import VERDICTS, generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OFFICE_WORDS = ("大厦", "写字楼", "办公室")


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=11, orders=5000, days=4, end=END)


def _bad(order) -> bool:  # noqa: ANN001
    return any(v in order.labels for v in VERDICTS)


def test_verdicts_are_labels_of_paid_orders_apart_from_the_signals(world) -> None:
    fraud = [o for o in world.orders if "fraud" in o.labels]
    abuse = [o for o in world.orders if "coupon_abuse" in o.labels]
    assert len(fraud) >= 15 and len(abuse) >= 8
    assert not [o for o in fraud if "coupon_abuse" in o.labels]
    assert all(o.paid_at is not None for o in fraud + abuse)
    # the actors are more than the injected IP farms and stackers
    assert [o for o in fraud if "ip_burst" not in o.labels]
    assert [o for o in abuse if "coupon_stacking" not in o.labels]


def test_bad_orders_share_identifiers_only_sometimes(world) -> None:
    buyers_on = defaultdict(set)
    for o in world.orders:
        for ident in (("ip", o.buyer_ip), ("phone", o.receiver.phone),
                      ("addr", o.receiver.province + o.receiver.address)):  # fmt: skip
            buyers_on[ident].add(o.buyer_id)
    devices = defaultdict(set)
    for buyer, device in world.devices.items():
        devices[device].add(buyer)

    def shared(o) -> int:  # noqa: ANN001
        idents = (("ip", o.buyer_ip), ("phone", o.receiver.phone),
                  ("addr", o.receiver.province + o.receiver.address))  # fmt: skip
        most = max(len(buyers_on[i]) for i in idents)
        device = world.devices.get(o.buyer_id)
        return max(most, len(devices[device]) if device else 1)

    injected = {"ip_burst", "coupon_stacking"}
    actors = [o for o in world.orders if _bad(o) and not injected & set(o.labels)]
    counts = [shared(o) for o in actors]
    assert sum(c >= 3 for c in counts) >= 5  # rings and farms showing a shared identifier
    assert sum(c < 3 for c in counts) >= 3  # too few buyers on any identifier for a rule


def test_honest_orders_show_signals_too(world) -> None:
    honest = [o for o in world.orders if o.paid_at is not None and not _bad(o)]
    ip_buyers = defaultdict(set)
    for o in world.orders:
        ip_buyers[o.buyer_ip].add(o.buyer_id)
    families = [o for o in honest if len(ip_buyers[o.buyer_ip]) >= 3]
    assert len(families) >= 6  # households behind one router
    assert sum(o.receiver.phone[:3] in ("170", "171") for o in honest) >= 10
    assert sum(any(w in o.receiver.address for w in OFFICE_WORDS) for o in honest) >= 10
    hunters = [o for o in honest if o.discount_amount > o.goods_value * 3 / 10]
    assert hunters  # bargain hunters above the 30 % subsidy line
    assert world.devices  # ring handsets and family tablets


def test_a_calm_world_plants_no_actors() -> None:
    calm = generate_world(seed=11, orders=2500, days=3, end=END, calm=True)
    for o in calm.orders:
        assert ("fraud" in o.labels) == ("ip_burst" in o.labels)
        if "coupon_abuse" in o.labels:
            assert "coupon_stacking" in o.labels
    assert not calm.devices
