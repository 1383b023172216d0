"""The Dagster concurrency pools `orderpulse prepare` (and so `demo` and `up`) sets: one build
of each dbt op at a time, the ops free to overlap; an operator's own limit is kept."""

from __future__ import annotations

import dagster as dg

from orchestration.dbt.assets import DBT_POOL, MARTS_POOL, MERCHANT_POOL, ORDERS_POOL
from orderpulse.cli import _limit_pools


def _limits(instance: dg.DagsterInstance) -> dict[str, int | None]:
    storage = instance.event_log_storage
    return {
        key: storage.get_concurrency_info(key).slot_count for key in storage.get_concurrency_keys()
    }


def test_each_dbt_op_gets_a_pool_of_one_slot_and_an_operators_limit_stays() -> None:
    with dg.instance_for_test() as instance:
        _limit_pools()
        assert _limits(instance) == {DBT_POOL: 1, MARTS_POOL: 1, MERCHANT_POOL: 1, ORDERS_POOL: 1}
        # an operator gave the marts two slots: a later `prepare` leaves that alone
        instance.event_log_storage.set_concurrency_slots(MARTS_POOL, 2)
        _limit_pools()
        assert _limits(instance) == {DBT_POOL: 1, MARTS_POOL: 2, MERCHANT_POOL: 1, ORDERS_POOL: 1}
