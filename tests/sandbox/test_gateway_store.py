"""The gateways' order index and request-time state: which orders a window holds at a given
moment, what an order looks like then, page shifts and late status updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox.gateways.common import Sealer, line_discounts, order_state
from sandbox.gateways.store import OrderStore, epoch_s
from sandbox.model import Coupon, Event, Item, Order, Receiver

T0 = datetime(2026, 11, 20, 2, 0, 0, tzinfo=UTC)


def order(no: str, created: datetime, *events: tuple[str, timedelta], **kw) -> Order:
    return Order(
        channel="taobao",
        platform_order_no=no,
        shop_id="s1",
        created_at=created,
        buyer_id="b1",
        receiver=Receiver(
            name="王芳",
            phone="15900001111",
            province="广东省",
            city="深圳市",
            district="南山区",
            address="高新南七道 18 号",
        ),
        items=[
            Item(sku="A", qty=2, price=Decimal("10.00")),
            Item(sku="B", qty=1, price=Decimal("5.55")),
        ],
        events=[Event(at=created + delta, type=kind) for kind, delta in events],
        **kw,
    )


def s(moment: datetime) -> int:
    return epoch_s(moment)


def nos(store: OrderStore, idx) -> list[str]:
    return [store.orders[i].platform_order_no for i in idx.tolist()]


def test_an_order_sits_in_the_window_of_its_modified_time_as_of_now() -> None:
    o = order("1", T0, ("pay", timedelta(minutes=10)), ("ship", timedelta(hours=5)))
    store = OrderStore([o])
    early = s(T0 + timedelta(hours=1))  # paid, not shipped yet
    idx, t = store.modified_window(s(T0), s(T0 + timedelta(minutes=30)), early)
    assert nos(store, idx) == ["1"] and t.tolist() == [s(T0 + timedelta(minutes=10))]
    late = s(T0 + timedelta(hours=6))  # shipped: it left the early window
    idx, _ = store.modified_window(s(T0), s(T0 + timedelta(minutes=30)), late)
    assert nos(store, idx) == []
    idx, _ = store.modified_window(s(T0 + timedelta(hours=4)), s(T0 + timedelta(hours=6)), late)
    assert nos(store, idx) == ["1"]


def test_windows_are_inclusive_whole_seconds_and_hide_the_future() -> None:
    a = order("a", T0 + timedelta(milliseconds=700))
    b = order("b", T0 + timedelta(seconds=1))
    c = order("c", T0 + timedelta(hours=2))
    store = OrderStore([a, b, c])
    now = s(T0 + timedelta(hours=1))
    assert nos(store, store.modified_window(s(T0), s(T0), now)[0]) == ["a"]  # .7 s floors
    assert nos(store, store.modified_window(s(T0), s(T0) + 1, now)[0]) == ["a", "b"]
    assert nos(store, store.modified_window(s(T0), s(T0) + 10**6, now)[0]) == ["a", "b"]
    assert store.modified_s(2, now) is None  # created after now: invisible
    assert nos(store, store.created_window(s(T0), s(T0) + 10**6, now)[0]) == ["a", "b"]


def test_a_bump_moves_the_order_to_its_new_modified_time() -> None:
    o = order("1", T0, ("pay", timedelta(minutes=10)))
    store = OrderStore([o])
    now = s(T0 + timedelta(hours=3))
    assert store.bump(0, s(T0 + timedelta(hours=2)))
    assert nos(store, store.modified_window(s(T0), s(T0 + timedelta(hours=1)), now)[0]) == []
    hit = store.modified_window(s(T0 + timedelta(hours=1)), now, now)
    assert nos(store, hit[0]) == ["1"] and hit[1].tolist() == [s(T0 + timedelta(hours=2))]
    # before the bump the order is still where it was
    before = s(T0 + timedelta(hours=1))
    assert nos(store, store.modified_window(s(T0), before, before)[0]) == ["1"]


def test_changed_between_lists_each_change_in_time_order() -> None:
    a = order("a", T0, ("pay", timedelta(minutes=5)))
    b = order("b", T0 + timedelta(minutes=2))
    store = OrderStore([a, b])
    changed = store.changed_between(s(T0) - 1, s(T0) + 600)
    assert [store.orders[i].platform_order_no for i in changed] == ["a", "b", "a"]
    assert store.changed_between(s(T0) + 600, s(T0) + 900) == []


def test_adding_a_known_order_number_is_refused() -> None:
    store = OrderStore([order("1", T0)])
    try:
        store.add([order("1", T0)])
    except ValueError as err:
        assert "already published" in str(err)
    else:
        raise AssertionError("a duplicate order number was accepted")


@dataclass
class LateUpdate:
    event_type: str
    happened_at: datetime
    visible_at: datetime


def test_a_late_update_shows_only_once_visible_but_keeps_its_real_time() -> None:
    o = order("1", T0, ("pay", timedelta(minutes=5)), ("ship", timedelta(hours=1)))
    late = LateUpdate("ship", T0 + timedelta(hours=1), T0 + timedelta(hours=4))
    store = OrderStore([o], {"1": late})
    at_2h = s(T0 + timedelta(hours=2))
    assert store.modified_s(0, at_2h) == s(T0 + timedelta(minutes=5))
    state = order_state(o, store.modified_s(0, at_2h), late)
    assert state.unified == "paid_pending_review" and state.shipped_at is None
    at_5h = s(T0 + timedelta(hours=5))
    assert store.modified_s(0, at_5h) == s(T0 + timedelta(hours=4))
    state = order_state(o, store.modified_s(0, at_5h), late)
    assert state.unified == "in_transit" and state.shipped_at == T0 + timedelta(hours=1)


def test_state_distinguishes_after_sale_kinds_and_closing() -> None:
    def final(o: Order):
        return order_state(o, OrderStore([o]).modified_s(0, s(T0 + timedelta(days=9))))

    refund_after_ship = final(
        order("1", T0, ("pay", timedelta(1)), ("ship", timedelta(2)), ("refund", timedelta(3)))
    )
    assert refund_after_ship.unified == "after_sale" and refund_after_ship.after_sale == "refund"
    rejected = final(
        order("2", T0, ("pay", timedelta(1)), ("ship", timedelta(2)), ("reject", timedelta(3)))
    )
    assert rejected.after_sale == "reject" and rejected.after_sale_at == T0 + timedelta(3)
    refunded_early = final(order("3", T0, ("pay", timedelta(1)), ("refund", timedelta(2))))
    assert refunded_early.unified == "closed" and refunded_early.closed_at == T0 + timedelta(2)
    cancelled = final(order("4", T0, ("cancel", timedelta(1))))
    assert cancelled.unified == "closed" and not cancelled.paid


def test_line_discounts_add_up_to_the_order_discount() -> None:
    o = order("1", T0, coupons=[Coupon(code="X", issuer="platform", amount=Decimal("3.33"))])
    shares = line_discounts(o)
    assert sum(shares) == Decimal("3.33") and all(x >= 0 for x in shares)


def test_sealed_values_open_only_with_the_same_key_and_are_stable() -> None:
    sealer = Sealer("k1", "#", "#1##")
    sealed = sealer.seal("张伟")
    assert sealed == sealer.seal("张伟") and sealed.startswith("#") and "张伟" not in sealed
    assert sealer.open(sealed) == "张伟"
    assert Sealer("k2", "#", "#1##").open(sealed) is None
    assert sealer.open(sealed[:-5] + "A" + sealed[-4:]) is None
