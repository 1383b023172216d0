"""The rule simulator: how many decisions a proposed rule file changes, by rule, with cost."""

from __future__ import annotations

import pytest

from fulfillment.routing_simulation import simulate
from tests.fulfillment.routing_world import NOW, frames, health, make_rules, order, stock


def test_simulator_counts_changes_by_rule_with_freight_and_promise_deltas() -> None:
    # the seeds' "Xinjiang free shipping": remote orders with high freight go to review today
    chain = [
        "circuit_breaker",
        "front_hot_skus",
        "near_stock",
        "freight_share",
        "remote_region",
        "weighted_score",
    ]
    current = make_rules(chain=chain)
    proposed = make_rules(version="test-2")  # remote_region before freight_share
    orders, lines = frames(
        order("xj1", "乌鲁木齐", {"A": 1}, goods=50, freight=20),
        order("xj2", "乌鲁木齐", {"B": 2}, goods=60, freight=20),
        order("sh", "上海", {"A": 1}),
        order("bj", "北京", {"A": 1}, goods=40, freight=10),  # stays in review
    )
    rep = simulate(orders, lines, stock(), health(), current, proposed, NOW)
    assert rep.orders == 4 and rep.changed == 2
    assert rep.by_rule[["rule_from", "rule_to", "orders"]].values.tolist() == [
        ["freight_share", "remote_region", 2]
    ]
    new = rep.proposed.decisions.set_index("platform_order_no")
    added = new.loc[["xj1", "xj2"], "freight_cost"].sum()
    assert added > 0
    assert rep.by_rule["freight_delta"].iloc[0] == pytest.approx(added)
    assert rep.freight_cost_delta == pytest.approx(added)
    # two slow remote shipments join the shipped mean: promised days go up
    assert rep.promise_days_proposed > rep.promise_days_current
    by_dec = {(a, b): n for a, b, n in rep.by_decision.values.tolist()}
    assert (
        by_dec[("manual_review", "ship")] == 2 and by_dec[("manual_review", "manual_review")] == 1
    )
    assert set(rep.examples["platform_order_no"]) == {"xj1", "xj2"}
    s = rep.summary()
    assert (s["current_version"], s["proposed_version"]) == ("test-1", "test-2")


def test_same_rules_change_nothing() -> None:
    orders, lines = frames(order("a", "上海", {"A": 1}), order("b", "北京", {"B": 1}))
    rep = simulate(orders, lines, stock(), health(), make_rules(), make_rules(), NOW)
    assert rep.changed == 0 and rep.by_rule.empty and rep.freight_cost_delta == 0
