"""Scenario files: the 20-order example yields exactly those 20 orders in the truth; bad lines
are rejected with their line number and reason; unknown SKUs join the catalogue."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.scenario import load_scenario, merge_scenario
from sandbox.truth import truth_document
from sandbox.world import generate_world

TWENTY = Path(__file__).parents[1] / "fixtures" / "scenarios" / "twenty_orders.jsonl"
END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def small_world():
    return generate_world(seed=5, orders=300, end=END)


def test_twenty_orders_yield_exactly_those_in_the_truth(small_world) -> None:
    orders, errors = load_scenario(TWENTY)
    assert errors == [] and len(orders) == 20
    world = merge_scenario(small_world, orders, add=False)
    truth = truth_document(world.orders)["orders"]
    expected = sorted((o.channel, o.platform_order_no) for o in orders)
    assert [(r["channel"], r["platform_order_no"]) for r in truth] == expected
    by_key = {(o.channel, o.platform_order_no): o for o in orders}
    for row in truth:
        order = by_key[row["channel"], row["platform_order_no"]]
        assert row["status"] == order.status_at()
        assert row["paid_amount"] == str(order.paid_amount)
    statuses = {r["status"] for r in truth}
    assert {"delivered", "after_sale", "closed", "in_transit", "awaiting_payment"} <= statuses
    # the merchant-side records now describe the scenario orders only
    assert {(s.channel, s.platform_order_no) for s in world.shipments} <= set(by_key)
    assert {(t.channel, t.platform_order_no) for t in world.tracking_events} <= set(by_key)


def test_example_covers_channels_events_and_cross_border() -> None:
    orders, _ = load_scenario(TWENTY)
    assert len({o.channel for o in orders}) >= 8
    kinds = {e.type for o in orders for e in o.events}
    assert kinds == {"pay", "ship", "deliver", "cancel", "refund", "return", "reject"}
    abroad = [o for o in orders if o.country != "CN"]
    assert abroad and abroad[0].customs.hs_code and abroad[0].customs.declared_value


def test_add_keeps_generated_orders(small_world) -> None:
    orders, _ = load_scenario(TWENTY)
    world = merge_scenario(small_world, orders, add=True)
    assert len(world.orders) == len(small_world.orders) + 20
    assert len(truth_document(world.orders)["orders"]) == len(small_world.orders) + 20
    assert len(small_world.orders) == 300  # the original world is left alone


def test_unknown_skus_join_the_catalogue_stocked_everywhere(small_world) -> None:
    orders, _ = load_scenario(TWENTY)
    assert small_world.sku("SCN-MASK-01") is None
    world = merge_scenario(small_world, orders, add=False)
    sku = world.sku("SCN-MASK-01")
    assert sku is not None and str(sku.price) == "35.50"
    stocked = {s.warehouse_id for s in world.stock if s.sku == "SCN-MASK-01"}
    assert stocked == {w.warehouse_id for w in world.warehouses}
    assert all(s.on_hand > 0 for s in world.stock if s.sku == "SCN-MASK-01")


def _line(**changes) -> str:
    base = json.loads(TWENTY.read_text("utf-8").splitlines()[0])
    base.update(changes)
    return json.dumps(base, ensure_ascii=False)


def test_bad_lines_are_rejected_with_line_number_and_reason(tmp_path) -> None:
    good = json.loads(_line())
    too_much = {**good, "platform_order_no": "X3", "coupons": [
        {"code": "BIG", "issuer": "platform", "amount": "999.00"}]}  # fmt: skip
    lines = [
        _line(platform_order_no="OK1"),  # 1 ok
        "{not json",  # 2
        _line(platform_order_no="X2", channel="amazon"),  # 3 unknown channel
        json.dumps(too_much, ensure_ascii=False),  # 4 coupons exceed goods
        "",  # 5 blank: skipped
        _line(platform_order_no="X5", created_at="2026-11-20T10:00:00"),  # 6 naive time
        _line(platform_order_no="X6", coupons=[], items=[{"sku": "A", "qty": 1, "price": "1.005"}]),
        _line(platform_order_no="OK1"),  # 8 duplicate key
        "[1, 2]",  # 9 not an object
        _line(
            platform_order_no="X9", events=[{"at": "2026-11-20T10:00:00+08:00", "type": "teleport"}]
        ),  # fmt: skip
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    orders, errors = load_scenario(path)
    assert [o.platform_order_no for o in orders] == ["OK1"]
    reasons = {e.line_no: e.reason for e in errors}
    assert sorted(reasons) == [2, 3, 4, 6, 7, 8, 9, 10]
    assert "not valid JSON" in reasons[2]
    assert reasons[3].startswith("channel:")
    assert "coupons exceed the goods value" in reasons[4]
    assert reasons[6].startswith("created_at:") and "UTC offset" in reasons[6]
    assert "more than 2 decimals" in reasons[7]
    assert "already on line 1" in reasons[8]
    assert "JSON object" in reasons[9]
    assert reasons[10].startswith("events.0.type:")
    assert str(errors[0]).startswith("line 2: ")


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_scenario(tmp_path / "nope.jsonl")


def test_a_world_merged_without_its_first_records_has_the_same_records(small_world) -> None:
    # the sandbox skips the generated world's own records when a scenario follows: the merge
    # builds them again for the merged world, and they must come out the same
    orders, _ = load_scenario(TWENTY)
    bare = generate_world(seed=5, orders=300, end=END, records=False)
    assert bare.orders == small_world.orders
    assert not (bare.wms_events or bare.shipments or bare.stock or bare.behaviour_log)
    full, lean = merge_scenario(small_world, orders, add=True), merge_scenario(bare, orders, True)
    for kind in ("stock", "stock_movements", "wms_events", "shipments", "tracking_events",
                 "cs_tickets", "behaviour_log", "risk_feedback"):  # fmt: skip
        assert getattr(lean, kind) == getattr(full, kind), kind
        assert getattr(lean, kind), kind
