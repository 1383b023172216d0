"""`orderpulse demo`: publish a sandbox world, materialise the whole asset graph once with a
progress display, and print a summary beside the sandbox's ground truth."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.reporting.assets import read_channel_summary


def _run_with_progress(console: Console, job: dg.JobDefinition, instance: dg.DagsterInstance):
    run_id = dg.make_new_run_id() if hasattr(dg, "make_new_run_id") else None
    if run_id is None:
        from dagster._core.utils import make_new_run_id  # fallback for older releases

        run_id = make_new_run_id()
    total = len(job.asset_layer.executable_asset_keys) if job.asset_layer else 0
    outcome: dict = {}

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                instance=instance, run_id=run_id, raise_on_error=False
            )
        except Exception as exc:  # surfaced below, after the progress display closes
            outcome["error"] = exc

    worker = threading.Thread(target=execute, name="orderpulse-demo-run", daemon=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("materialising assets", total=total or None, last="")
        worker.start()
        seen = 0
        while worker.is_alive():
            worker.join(0.5)
            records = instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
            ).records
            if len(records) != seen:
                seen = len(records)
                last = records[-1].event_log_entry.dagster_event.asset_key.to_user_string()
                progress.update(task, completed=min(seen, total or seen), last=last)
    if "error" in outcome:
        raise outcome["error"]
    return run_id, outcome["result"]


def _truth_counts(truth: dict) -> tuple[Counter, dict[str, Decimal]]:
    counts: Counter = Counter()
    paid: dict[str, Decimal] = {}
    for order in truth.get("orders", []):
        counts[order["channel"]] += 1
        paid[order["channel"]] = paid.get(order["channel"], Decimal("0")) + Decimal(
            order["paid_amount"]
        )
    return counts, paid


def print_summary(console: Console, conn: psycopg.Connection, truth: dict | None) -> int:
    summary = read_channel_summary(conn)
    counts, paid = _truth_counts(truth or {})
    table = Table(title="marts.fct_orders per channel", show_footer=True)
    table.add_column("channel", footer="total")
    table.add_column("orders", justify="right", footer=str(int(summary["orders"].sum())))
    table.add_column("paid orders", justify="right")
    table.add_column("goods value ¥", justify="right")
    table.add_column("paid amount ¥", justify="right")
    if truth is not None:
        table.add_column("truth orders", justify="right", footer=str(sum(counts.values())))
        table.add_column("truth paid ¥", justify="right")
    for row in summary.itertuples(index=False):
        cells = [
            row.channel, str(row.orders), str(row.paid_orders),
            f"{row.goods_value:,.2f}", f"{row.paid_amount:,.2f}",
        ]  # fmt: skip
        if truth is not None:
            cells += [str(counts.get(row.channel, 0)), f"{paid.get(row.channel, 0):,.2f}"]
        table.add_row(*cells)
    console.print(table)
    return int(summary["orders"].sum()) if len(summary) else 0


def run_demo(
    console: Console,
    *,
    home: Path,
    seed: int,
    orders: int,
    days: int,
    scenario: Path | None,
    add: bool,
) -> bool:
    from orchestration.definitions import defs
    from sandbox.server import Sandbox

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("orderpulse_full_run")
    started = time.monotonic()
    with Sandbox(home, seed=seed, orders=orders, days=days, scenario=scenario, add=add) as sb:
        errors = getattr(sb, "scenario_errors", []) or []
        for error in errors:
            console.print(f"[yellow]scenario rejected[/] {error}")
        console.print(
            f"[bold]sandbox[/] published {len(sb.truth()['orders']):,} orders "
            f"({time.monotonic() - started:.1f}s); endpoints in {home / 'sandbox.json'}"
        )
        run_id, result = _run_with_progress(console, job, instance)
        truth = sb.truth()
    import os

    with psycopg.connect(os.environ["ORDERPULSE_WAREHOUSE_URL"]) as conn:
        total = print_summary(console, conn, truth)
    status = "[green]succeeded[/]" if result.success else "[red]failed[/]"
    console.print(
        f"run {run_id} {status} in {time.monotonic() - started:.0f}s; "
        f"{total:,} orders in marts.fct_orders. Open the UI with `orderpulse up`."
    )
    if not result.success:
        for event in result.all_events:
            if event.is_failure:
                console.print(f"[red]{event.step_key}[/]: {event.message}")
    return result.success and total > 0
