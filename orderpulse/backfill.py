"""`orderpulse backfill`: pull the marketplaces' orders of the last N days (the same signed,
windowed, paged pulls the schedules make, from further back) in one Dagster run with a progress
bar, and by default rebuild everything that reads them (dbt, the decisions, the reports).

The loader is idempotent: a backfill over orders already in `raw` changes only what changed on
the platform since.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import dagster as dg
from rich.console import Console

from orderpulse.demo import _run_with_progress, print_step_failures


def backfill_selection(channels: list[str], downstream: bool) -> list[dg.AssetKey]:
    """The channels' order assets, and with `downstream` every asset that reads them."""
    from orchestration.definitions import defs
    from orchestration.ingest.assets import orders_asset_key

    selection = dg.AssetSelection.assets(*(orders_asset_key(c) for c in channels))
    if downstream:
        selection = selection.downstream()
    return sorted(selection.resolve(defs.resolve_asset_graph()), key=lambda k: k.to_string())


def run_backfill(
    console: Console, *, home: Path, channels: list[str], days: int, downstream: bool
) -> bool:
    from orchestration.definitions import defs
    from orchestration.ingest.assets import orders_asset_key

    started = time.monotonic()
    keys = backfill_selection(channels, downstream)
    config = {
        orders_asset_key(c).to_python_identifier(): {"config": {"backfill_days": days}}
        for c in channels
    }
    log_path = home / "logs" / f"backfill-{datetime.now():%Y%m%d-%H%M%S}.log"
    console.print(
        f"backfill: {', '.join(channels)} over the last {days} days"
        + (f", then {len(keys) - len(channels)} assets downstream" if downstream else "")
    )
    job = defs.resolve_job_def("orderpulse_full_run")
    run_id, result = _run_with_progress(
        console, job, dg.DagsterInstance.get(), log_path, config, asset_selection=keys
    )
    loaded = {}
    for event in result.all_events:
        if event.is_step_materialization and event.asset_key in {
            orders_asset_key(c) for c in channels
        }:
            meta = event.step_materialization_data.materialization.metadata
            loaded[event.asset_key.path[-1]] = {
                k: getattr(v, "value", v) for k, v in meta.items() if k in ("inserted", "updated")
            }
    for name, stats in sorted(loaded.items()):
        console.print(f"  {name}: {stats or 'loaded'}")
    if not result.success:
        print_step_failures(console, result)
    status = "[green]succeeded[/]" if result.success else "[red]failed[/]"
    console.print(
        f"run {run_id} {status} in {time.monotonic() - started:.0f}s; output in {log_path}",
        soft_wrap=True,
    )
    return result.success
