"""What the automation sensor requests after a load, evaluated by Dagster's own condition
engine on the real definitions (no run is launched): the dbt views read raw live, so a load
rebuilds none of them, and what reads them (through up to three views) follows the load."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.conventions import updated_through_views
from orchestration.dbt.assets import longest_chain

LABEL = "a view: built when its code changes"


@pytest.fixture()
def defs() -> dg.Definitions:
    """The definitions read the dbt manifest, which a session fixture prepares: not at import."""
    from orchestration.definitions import defs

    return defs


def _path(key: dg.AssetKey) -> str:
    return "/".join(key.path)


def _requested_after(defs: dg.Definitions, *loads: str) -> set[str]:
    """Every asset materialised once (the initial full run), a tick, then `loads`
    materialised: what the next tick requests."""
    graph = defs.resolve_asset_graph()
    with dg.DagsterInstance.ephemeral() as instance:
        for key in graph.materializable_asset_keys:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # built, nothing new: nothing to do
        for load in loads:
            key = dg.AssetKey(load.split("/"))
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor
        )
    return {_path(r.key) for r in result.results if r.true_subset.size}


def _views(defs: dg.Definitions) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {
        _path(key)
        for key in graph.materializable_asset_keys
        if (condition := graph.get(key).automation_condition) and condition.get_label() == LABEL
    }


def test_an_order_load_rebuilds_no_view_and_reaches_the_decisions_through_three(defs) -> None:
    views = _views(defs)
    assert {"staging/stg_taobao__orders", "intermediate/int_orders_unioned",
            "intermediate/int_order_platform_status"} <= views  # fmt: skip
    requested = _requested_after(defs, "raw/taobao_orders")
    assert not requested & views
    # raw -> stg_taobao__orders -> int_orders_unioned -> int_order_platform_status (views)
    # -> int_orders, and on to the decisions and the marts
    assert {"intermediate/int_orders", "ops/routing_decisions", "ops/risk_assessments",
            "marts/fct_orders", "marts/order_holographic"} <= requested  # fmt: skip
    # the view whose blocking check guards routing is rebuilt (and checked) on every load
    assert "intermediate/int_orders_awaiting_allocation" in requested
    assert "intermediate/int_orders_awaiting_allocation" not in views


def test_a_merchant_system_load_rebuilds_only_what_reads_it(defs) -> None:
    views = _views(defs)
    requested = _requested_after(defs, "raw/cs_tickets")
    # raw.cs_tickets -> stg_merchant_systems__cs_tickets (a view) -> fct_cs_tickets
    assert {"marts/fct_cs_tickets", "marts/fct_after_sales"} <= requested
    assert not requested & views
    # nor the order models upstream of the decisions (a ticket may hold an order: the CS
    # holds and routing after them do follow it)
    assert not {"intermediate/int_orders", "intermediate/int_order_fulfillment_events"} & requested
    assert "ops/review_queue" in requested


def test_nothing_loaded_requests_nothing(defs) -> None:
    assert _requested_after(defs) == set()


def test_the_condition_looks_exactly_as_deep_as_the_longest_chain_of_views() -> None:
    """Three views in a row: a mart reading the last sees an update of the first view's input,
    and not one a view deeper than the condition looks."""

    def view(name: str, dep: str) -> dg.AssetSpec:
        return dg.AssetSpec(name, deps=[dep])

    chain = [dg.AssetSpec("raw"), view("v1", "raw"), view("v2", "v1"), view("v3", "v2")]
    parents = {dg.AssetKey("v1"): set(), dg.AssetKey("v2"): {dg.AssetKey("v1")},
               dg.AssetKey("v3"): {dg.AssetKey("v2")}}  # fmt: skip
    assert longest_chain(parents) == 3
    views = dg.AssetSelection.assets("v1", "v2", "v3")

    def requested(depth: int) -> bool:
        mart = dg.AssetSpec(
            "mart",
            deps=["v3"],
            automation_condition=updated_through_views(views, depth),
        )
        defs = dg.Definitions(assets=[*chain, mart])
        with dg.DagsterInstance.ephemeral() as instance:
            first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
            instance.report_runless_asset_event(dg.AssetMaterialization("raw"))
            result = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=first.cursor
            )
        return result.total_requested == 1

    assert requested(3)
    assert not requested(2)
