"""The world generator: deterministic, consistent amounts, real addresses, every anomaly kind
present and labelled exactly where the data says so."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import cpca
import pytest

from sandbox import geo
from sandbox.model import CHANNELS, MARKETPLACES, UNIFIED_STATUSES, Order
from sandbox.truth import truth_document, write_truth
from sandbox.world import LABELS, VERDICTS, generate_world, iter_orders

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BJ = timedelta(hours=8)


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=7, orders=10_000, days=3, end=END)


def test_same_seed_same_world_and_other_seed_differs() -> None:
    a = generate_world(seed=11, orders=400, end=END)
    b = generate_world(seed=11, orders=400, end=END)
    c = generate_world(seed=12, orders=400, end=END)
    assert truth_document(a.orders) == truth_document(b.orders)
    assert [o.model_dump() for o in a.orders] == [o.model_dump() for o in b.orders]
    assert a.tracking_events == b.tracking_events and a.stock == b.stock
    assert truth_document(a.orders) != truth_document(c.orders)


def test_iter_orders_streams_the_same_orders_in_chunks() -> None:
    whole = generate_world(seed=3, orders=700, end=END).orders
    chunks = list(iter_orders(seed=3, orders=700, end=END, chunk_size=250))
    assert [len(c) for c in chunks] == [250, 250, 200]
    assert [o.model_dump() for c in chunks for o in c] == [o.model_dump() for o in whole]


def test_generated_orders_are_valid_orders(world) -> None:
    # built with model_construct for speed: they must still pass full validation
    for o in world.orders[::7]:
        again = Order.model_validate(o.model_dump())
        assert again.truth() == o.truth()


def test_every_anomaly_kind_is_in_the_default_world(world) -> None:
    counts = Counter(label for o in world.orders for label in o.labels)
    assert set(LABELS) <= set(counts), set(LABELS) - set(counts)
    assert set(VERDICTS) <= set(counts)  # the hidden risk verdicts, beside the signal labels
    assert all(label in LABELS or label in VERDICTS for label in counts)


def test_keys_unique_channels_spread_statuses_valid(world) -> None:
    keys = [(o.channel, o.platform_order_no) for o in world.orders]
    assert len(keys) == len(set(keys)) == 10_000
    per_channel = Counter(o.channel for o in world.orders)
    assert set(per_channel) == set(CHANNELS)
    assert sum(per_channel[c] for c in MARKETPLACES) > 0.6 * len(world.orders)
    doc = truth_document(world.orders)
    assert len(doc["orders"]) == 10_000
    assert {r["status"] for r in doc["orders"]} <= set(UNIFIED_STATUSES)
    assert {"delivered", "in_transit", "closed", "after_sale", "paid_pending_review"} <= {
        r["status"] for r in doc["orders"]
    }
    for shop_list in world.shops.values():
        assert shop_list
    assert {o.shop_id for o in world.orders} <= {s.shop_id for v in world.shops.values() for s in v}


def test_amounts_consistent(world) -> None:
    for o in world.orders:
        assert 1 <= len(o.items) <= 5
        assert len({i.sku for i in o.items}) == len(o.items)
        assert Decimal("0") <= o.discount_amount <= o.goods_value
        assert o.paid_amount == o.goods_value - o.discount_amount + o.freight
        assert o.paid_amount >= 0
        for amount in [o.freight, *(i.price for i in o.items), *(c.amount for c in o.coupons)]:
            assert amount.as_tuple().exponent >= -2


def test_every_time_is_within_the_world(world) -> None:
    for o in world.orders:
        assert world.start <= o.created_at <= world.end
        assert all(o.created_at <= e.at <= world.end for e in o.events)
        assert o.paid_at is None or o.paid_at <= world.end
    for name in ("wms_events", "stock_movements", "tracking_events", "behaviour_log"):
        assert max(r.at for r in getattr(world, name)) <= world.end
    assert max(t.updated_at for t in world.cs_tickets) <= world.end


def test_addresses_are_real_cpca_triples_and_phones_mainland(world) -> None:
    mainland = [o for o in world.orders if o.country == "CN"]
    sample = mainland[::5]
    table = cpca.transform([o.receiver.province + o.receiver.city + o.receiver.district +
                            o.receiver.address for o in sample])  # fmt: skip
    index = geo.district_index()
    for o, adcode in zip(sample, table["adcode"], strict=True):
        r = o.receiver
        district = geo.districts()[index[(r.province, r.city, r.district)]]
        assert adcode == district.adcode, (r, adcode)
    phone = re.compile(r"^1[3-9]\d{9}$")
    assert all(phone.match(o.receiver.phone) for o in mainland)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", o.receiver.name) for o in mainland)


def test_computed_labels_match_the_data(world) -> None:
    for o in world.orders:
        labels = set(o.labels)
        r = o.receiver
        bj_hour = (o.paid_at + BJ).hour if o.paid_at else None
        assert ("night_payment" in labels) == (bj_hour is not None and 2 <= bj_hour < 4)
        assert ("virtual_carrier_phone" in labels) == (r.phone[:3] in ("170", "171"))
        assert ("cross_border" in labels) == (o.country != "CN")
        assert ("remote_region" in labels) == (
            o.country == "CN" and r.province in geo.REMOTE_PROVINCES
        )
        offices = ("公司", "工业园", "大厦", "写字楼", "办公室")
        assert ("b2b_address" in labels) == any(w in r.address for w in offices)
        if o.country != "CN":
            assert o.customs is not None and o.customs.declared_value == o.goods_value
            assert (o.customs.hs_code is None) == ("customs_incomplete" in labels)
        kinds = {e.type for e in o.events}
        stuck = (
            o.channel != "pos"
            and o.paid_at is not None
            and o.paid_at <= world.end - timedelta(hours=48)
            and not kinds & {"ship", "cancel", "refund"}
        )
        assert ("stuck_order" in labels) == stuck, o.platform_order_no


def test_duplicate_orders_are_the_mergeable_households_within_30_min(world) -> None:
    """Same phone and address within 30 min among orders a merchant could merge: shipped by
    parcel (not POS), neither cancelled nor refunded, receiver visible (PDD: only while paid
    and awaiting shipment); pairs on one channel and across channels."""

    def mergeable(o) -> bool:  # noqa: ANN001
        kinds = {e.type for e in o.events}
        hidden = o.channel == "pdd" and ("pay" not in kinds or "ship" in kinds)
        return o.channel != "pos" and not kinds & {"cancel", "refund"} and not hidden

    by_contact = defaultdict(list)
    for o in world.orders:
        if mergeable(o):
            by_contact[(o.receiver.phone, o.receiver.address)].append(o)
    expected, channels = set(), set()
    for group in by_contact.values():
        group.sort(key=lambda o: o.created_at)
        for a, b in zip(group, group[1:], strict=False):
            if b.created_at - a.created_at <= timedelta(minutes=30):
                expected |= {(a.channel, a.platform_order_no), (b.channel, b.platform_order_no)}
                channels.add(a.channel == b.channel)
    labelled = {
        (o.channel, o.platform_order_no) for o in world.orders if "duplicate_order" in o.labels
    }
    assert expected and labelled == expected
    assert channels == {True, False}  # same-channel and cross-channel pairs


def test_ip_bursts_are_exactly_the_labelled_orders(world) -> None:
    by_ip = defaultdict(list)
    for o in world.orders:
        by_ip[o.buyer_ip].append(o.created_at)
    burst = set()
    for ip, times in by_ip.items():
        times.sort()
        if any(sum(1 for t in times if s <= t < s + timedelta(hours=1)) > 5 for s in times):
            burst.add(ip)
    labelled_ips = {o.buyer_ip for o in world.orders if "ip_burst" in o.labels}
    assert burst and labelled_ips == burst


def test_coupon_stacking(world) -> None:
    day = defaultdict(list)
    for o in world.orders:
        if o.paid_at is not None:
            day[(o.buyer_id, (o.paid_at + BJ).date())].append(o)
    for orders in day.values():
        goods = sum(o.goods_value for o in orders)
        coupons = sum(o.discount_amount for o in orders)
        platforms = {o.channel for o in orders for c in o.coupons if c.issuer == "platform"}
        abuse = coupons > Decimal("0.30") * goods or len(platforms) >= 2
        for o in orders:
            assert ("coupon_stacking" in o.labels) == (abuse and bool(o.coupons))
    stacked = [o for o in world.orders if "coupon_stacking" in o.labels]
    assert len({o.channel for o in stacked}) >= 2


def test_logistics_records_agree_with_labels(world) -> None:
    orders = {(o.channel, o.platform_order_no): o for o in world.orders}
    shipped = {k for k, o in orders.items() if any(e.type == "ship" for e in o.events)}
    shipped -= {k for k, o in orders.items() if o.channel == "pos"}
    ships = {(s.channel, s.platform_order_no): s for s in world.shipments}
    assert set(ships) == shipped
    failed = {(t.channel, t.platform_order_no) for t in world.tracking_events
              if t.status == "pickup_failed"}  # fmt: skip
    assert failed == {k for k, o in orders.items() if "pickup_failure" in o.labels}
    # a parcel the carrier stopped on the way back (the buyer cancelled) ends when it turns back
    returned = {(t.channel, t.platform_order_no): t.at for t in world.tracking_events
                if t.status == "returning"}  # fmt: skip
    for k, s in ships.items():
        rejected = next((e.at for e in orders[k].events if e.type == "reject"), None)
        late = (s.delivered_at or rejected or returned.get(k) or world.end) > s.promised_at
        assert late == ("delivery_timeout" in orders[k].labels), k
    carriers = Counter(s.carrier for s in world.shipments)
    assert {"SF", "ZTO", "JD", "EMS"} <= set(carriers)


def test_stock_warehouses_and_oversold(world) -> None:
    assert len(world.warehouses) >= 4 and any(w.is_front for w in world.warehouses)
    stale = [
        w for w in {s.warehouse_id: s.last_sync_at for s in world.stock}.items()
        if world.end - w[1] > timedelta(minutes=30)
    ]  # fmt: skip
    assert len(stale) == 1
    negative = {s.sku for s in world.stock if s.available < 0}
    assert negative and negative <= set(world.oversold_skus)
    oversold_orders = {
        (o.channel, o.platform_order_no) for o in world.orders if "oversold_sku" in o.labels
    }
    assert all(
        any(i.sku in world.oversold_skus for i in o.items)
        for o in world.orders
        if "oversold_sku" in o.labels
    )
    failed = {(e.channel, e.platform_order_no) for e in world.wms_events
              if e.type == "allocate_failed"}  # fmt: skip
    assert failed and failed <= oversold_orders
    assert all(s.sku in {k.sku for k in world.skus} for s in world.stock)
    assert {m.kind for m in world.stock_movements} >= {"inbound", "lock", "release", "ship"}


def test_late_status_updates(world) -> None:
    labelled = {(o.channel, o.platform_order_no): o for o in world.orders
                if "late_status_update" in o.labels}  # fmt: skip
    assert labelled and set(world.late_updates) == set(labelled)
    for key, late in world.late_updates.items():
        order = labelled[key]
        assert order.events[-1].at == late.happened_at < late.visible_at <= world.end
        assert world.platform_modified_at(order) == late.visible_at
        hidden = world.platform_events(order, now=late.visible_at - timedelta(seconds=1))
        assert len(hidden) == len(order.events) - 1


def test_cs_tickets_and_behaviour(world) -> None:
    topics = Counter(t.topic for t in world.cs_tickets)
    assert {"催发货", "物流投诉", "取消订单"} <= set(topics)
    assert all(re.search(r"[\u4e00-\u9fff]", t.text) for t in world.cs_tickets)
    churn = {o.buyer_id for o in world.orders if "cart_churn" in o.labels}
    cart = defaultdict(list)
    for b in world.behaviour_log:
        if b.action in ("cart_add", "cart_remove"):
            cart[b.buyer_id].append(b.at)
    busy = {
        buyer
        for buyer, times in cart.items()
        if any(sum(1 for t in times if s <= t < s + timedelta(minutes=1)) > 20 for s in times)
    }
    assert churn and churn == busy


def test_write_truth(tmp_path, world) -> None:
    path = write_truth(tmp_path / "truth.json", world.orders[:50])
    import json

    doc = json.loads(path.read_text("utf-8"))
    assert len(doc["orders"]) == 50
    assert set(doc["orders"][0]) == {
        "channel", "platform_order_no", "status", "goods_value", "paid_amount", "labels",
    }  # fmt: skip
    with pytest.raises(ValueError, match="appears twice"):
        truth_document([world.orders[0], world.orders[0]])


@pytest.mark.parametrize(
    ("orders", "channels"), [(0, CHANNELS), (1, CHANNELS), (13, CHANNELS), (200, ("pos",))]
)
def test_tiny_and_partial_worlds(orders, channels) -> None:
    w = generate_world(seed=1, orders=orders, end=END, channels=channels)
    assert len(w.orders) == orders
    assert {o.channel for o in w.orders} <= set(channels)
    assert len(truth_document(w.orders)["orders"]) == orders


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="channels"):
        generate_world(orders=10, end=END, channels=("amazon",))
    with pytest.raises(ValueError, match="timezone"):
        generate_world(orders=10, end=datetime(2026, 11, 23))


def test_world_orders_share_one_set_of_field_names_and_stay_independent() -> None:
    # one set of field names per model for the whole world (memory), which an assignment or a
    # copy's update must not turn into a change of another order
    orders = generate_world(seed=5, orders=60, end=END).orders
    first, second = orders[0], orders[1]
    assert first.model_fields_set is second.model_fields_set
    assert first.items[0].model_fields_set is second.items[0].model_fields_set
    assert set(first.model_fields_set) == set(Order.model_fields)
    note = second.seller_note
    copied = first.model_copy(update={"seller_note": "copied"})
    first.buyer_note = "assigned"
    assert (copied.seller_note, first.buyer_note) == ("copied", "assigned")
    assert second.seller_note == note and second.buyer_note != "assigned"
    assert set(second.model_fields_set) == set(Order.model_fields)
    assert first.model_dump(mode="json")["buyer_note"] == "assigned"
