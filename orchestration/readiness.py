"""Schedules that read the warehouse wait for it to be built: on a fresh `orderpulse up` the
first full run takes minutes, and a schedule due meanwhile would fail on a missing relation.
They skip with the reason instead (the tick says which relations are missing)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import dagster as dg

from kernel.database import missing_relations
from orchestration.resources import WarehouseResource


def skip_until_built(
    warehouse: WarehouseResource, relations: Sequence[str]
) -> dg.SkipReason | None:
    """A SkipReason naming the missing relations, or None when every one exists."""
    with warehouse.connect() as conn:
        missing = missing_relations(conn, relations)
    if not missing:
        return None
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return dg.SkipReason(
        f"the warehouse is not built yet ({shown} missing): the first full run builds it"
    )


@cache
def dbt_relations() -> tuple[str, ...]:
    """Every relation the dbt project materialises ("schema.name"), from the manifest."""
    from orchestration.dbt.project import load_manifest

    nodes = load_manifest()["nodes"].values()
    return tuple(
        sorted(
            f"{n['schema']}.{n.get('alias') or n['name']}"
            for n in nodes
            if n["resource_type"] in ("model", "seed", "snapshot")
            and n["config"].get("materialized") != "ephemeral"
            and n["config"].get("enabled", True)
        )
    )
