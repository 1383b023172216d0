"""`orderpulse demo`: publish a sandbox world, materialise the whole asset graph once with a
progress display, and print a summary beside the sandbox's ground truth."""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import dagster as dg
import pandas as pd
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.reporting.assets import read_channel_summary
from orchestration.threaded_executor import execute_in_process_threaded
from orderpulse.truth_digest import CHANNEL_TOTALS, read_digest


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to file descriptors 1 and 2 to `log_path`: dbt's lines that
    dagster-dbt prints, Dagster's and GX's loggers and bars, any subprocess. Yields a stream on
    the original stdout (still a terminal when it was one) for the progress display."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with log_path.open("wb") as log, os.fdopen(os.dup(saved[0]), "w") as terminal:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield terminal
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _run_with_progress(
    console: Console,
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    log_path: Path,
    ops_config: dict,
    asset_selection: list[dg.AssetKey] | None = None,
):
    run_id = dg.make_new_run_id() if hasattr(dg, "make_new_run_id") else None
    if run_id is None:
        from dagster._core.utils import make_new_run_id  # fallback for older releases

        run_id = make_new_run_id()
    if asset_selection is not None:
        total = len(asset_selection)
    else:
        total = len(job.asset_layer.executable_asset_keys) if job.asset_layer else 0
    outcome: dict = {}

    def execute() -> None:
        try:
            outcome["result"] = execute_in_process_threaded(
                job,
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                asset_selection=asset_selection,
                # the progress bar is the console output; the full log is in the UI
                run_config={
                    "loggers": {"console": {"config": {"log_level": "ERROR"}}},
                    "ops": ops_config,
                },
            )
        except Exception as exc:  # surfaced below, after the progress display closes
            outcome["error"] = exc

    worker = threading.Thread(target=execute, name="orderpulse-demo-run", daemon=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    # dbt's own output goes to the log file; the terminal shows the progress bar only (rich
    # must not route prints to the terminal: its stdout redirect is off)
    with (
        _output_to(log_path) as terminal,
        Progress(
            *columns, console=Console(file=terminal, width=console.width), transient=False,
            redirect_stdout=False, redirect_stderr=False,
        ) as progress,
    ):  # fmt: skip
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
    if CHANNEL_TOTALS in truth:  # a digest (orderpulse/truth_digest.py): already counted
        for channel, (n, amount) in truth[CHANNEL_TOTALS].items():
            counts[channel], paid[channel] = n, Decimal(amount)
        return counts, paid
    for order in truth.get("orders", []):
        counts[order["channel"]] += 1
        paid[order["channel"]] = paid.get(order["channel"], Decimal("0")) + Decimal(
            order["paid_amount"]
        )
    return counts, paid


def print_summary(console: Console, conn: psycopg.Connection, truth: dict | None) -> int:
    """Per channel: orders and paid amount in marts.fct_orders beside the sandbox's truth."""
    summary = read_channel_summary(conn)
    counts, paid = _truth_counts(truth or {})
    table = Table(title="marts.fct_orders per channel vs the sandbox's ground truth")
    for name in ("channel", "orders", "paid ¥"):
        table.add_column(name, justify="left" if name == "channel" else "right")
    if truth is not None:
        for name in ("truth orders", "truth paid ¥", "match"):
            table.add_column(name, justify="right")
    rows = {r.channel: r for r in summary.itertuples(index=False)}
    matches = 0
    for channel in sorted(set(rows) | set(counts)):
        row = rows.get(channel)
        n, amount = (int(row.orders), Decimal(row.paid_amount)) if row else (0, Decimal("0"))
        cells = [channel, f"{n:,}", f"{amount:,.2f}"]
        if truth is not None:
            want_n, want_paid = counts.get(channel, 0), paid.get(channel, Decimal("0"))
            ok = n == want_n and amount == want_paid
            matches += ok
            cells += [f"{want_n:,}", f"{want_paid:,.2f}", "[green]yes[/]" if ok else "[red]no[/]"]
        table.add_row(*cells)
    total = sum(int(r.orders) for r in rows.values())
    total_paid = sum((Decimal(r.paid_amount) for r in rows.values()), Decimal("0"))
    cells = ["total", f"{total:,}", f"{total_paid:,.2f}"]
    if truth is not None:
        channels = len(set(rows) | set(counts))
        cells += [
            f"{sum(counts.values()):,}", f"{sum(paid.values(), Decimal('0')):,.2f}",
            f"{matches} of {channels}",
        ]  # fmt: skip
    table.add_section()
    table.add_row(*cells)
    console.print(table)
    return total


DECISIONS_SQL = """
select rule, decision, count(*) as orders, count(distinct warehouse_id) as warehouses
from ops.routing_decisions
group by rule, decision
order by count(*) desc, rule
"""


OTHER_DECISIONS_SQL = """
select
    (select count(*) from ops.inventory_locks where state = 'locked'),
    (select count(*) from ops.inventory_locks where state = 'oversold'),
    (select count(*) from ops.inventory_locks where state = 'released'),
    (select count(*) from ops.merge_candidates),
    (select count(distinct group_id) from ops.merge_candidates),
    (select count(*) from ops.pause_sale),
    (select count(*) from ops.risk_assessments),
    (select count(*) from ops.review_queue where decision is null)
"""


def print_decisions(console: Console, conn: psycopg.Connection) -> None:
    """Routing decisions per deciding rule, and the circuit breaker's alerts."""
    rows = conn.execute(DECISIONS_SQL).fetchall()
    alerts = conn.execute(
        "select count(*) from ops.alerts where rule = 'routing_circuit_breaker'"
    ).fetchone()[0]
    table = Table(title="ops.routing_decisions per rule (config/routing.yaml)")
    for name in ("rule", "decision", "orders", "warehouses"):
        table.add_column(name, justify="left" if name in ("rule", "decision") else "right")
    for rule, decision, orders, warehouses in rows:
        table.add_row(rule, decision, f"{orders:,}", f"{warehouses:,}")
    table.add_section()
    table.add_row("total", "", f"{sum(r[2] for r in rows):,}", "")
    console.print(table)
    console.print(f"circuit-breaker alerts (warehouse dropped out of routing): {alerts}")
    facts = conn.execute(OTHER_DECISIONS_SQL).fetchone()
    console.print(
        "stock locks: {} locked, {} oversold, {} released; merge candidates: {} orders in {} "
        "groups; pause-sale SKUs: {}; risk: {} assessed, {} held for review".format(*facts)
    )


# the sandbox's labelled orders (truth) beside what the decisions made of them
LABELLED_SQL = """
with labelled as (
    select * from unnest(%(channels)s::text[], %(nos)s::text[], %(labels)s::text[])
        as l(channel, platform_order_no, label)
)
select
    count(*) filter (where label = 'oversold_sku'),
    count(*) filter (where label = 'oversold_sku' and exists (
        select 1 from ops.inventory_locks k
        where (k.channel, k.platform_order_no) = (l.channel, l.platform_order_no)
            and k.state = 'oversold')),
    count(*) filter (where label = 'duplicate_order'),
    count(*) filter (where label = 'duplicate_order' and m.platform_order_no is not null),
    -- the sandbox labels only mergeable households; risk's review holds never merge (the
    -- sandbox cannot know them)
    count(*) filter (where label = 'duplicate_order' and m.platform_order_no is null
                     and r.platform_order_no is not null)
from labelled l
left join (select distinct channel, platform_order_no from ops.merge_candidates) m
    using (channel, platform_order_no)
left join ops.review_queue r using (channel, platform_order_no)
"""


def print_decisions_vs_truth(
    console: Console, conn: psycopg.Connection, truth: dict | None
) -> None:
    """Oversold and duplicate orders the sandbox labelled, as the lock and merge steps saw
    them, and the platform-vs-WMS reconciliation beside the planted stock differences."""
    if truth is None:
        return
    rows = [
        (o["channel"], o["platform_order_no"], label)
        for o in truth.get("orders", [])
        for label in (o.get("labels") or [])
        if label in ("oversold_sku", "duplicate_order")
    ]
    channels, nos, labels = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    oversold, flagged, duplicates, merged, held = conn.execute(
        LABELLED_SQL, {"channels": channels, "nos": nos, "labels": labels}
    ).fetchone()
    planted = {i["sku"] for i in truth.get("incidents", []) if i.get("kind") == "stock_diff"}
    found = {r[0] for r in conn.execute("select distinct sku from ops.stock_reconciliation")}
    console.print(
        f"truth: {flagged} of {oversold} oversold_sku orders flagged oversold; {merged} of "
        f"{duplicates} duplicate_order orders in ops.merge_candidates ({held} held for review, "
        f"never merged; {duplicates - merged - held} missed); stock "
        f"reconciliation: "
        f"{len(found)} SKUs off by more than 3, {len(found & planted)} of {len(planted)} planted "
        f"stock_diff SKUs among them"
    )


# risk's review queue beside the sandbox's hidden verdicts (fraud, coupon_abuse)
RISK_TRUTH_SQL = """
with bad as (
    select * from unnest(%(channels)s::text[], %(nos)s::text[]) as b(channel, platform_order_no)
)
select
    count(*),
    count(b.platform_order_no),
    count(q.platform_order_no),
    count(*) filter (where b.platform_order_no is not null and q.platform_order_no is not null),
    string_agg(distinct coalesce(a.model_version, 'rules alone'), ', ')
from ops.risk_assessments a
left join bad b using (channel, platform_order_no)
left join ops.review_queue q
    on (q.channel, q.platform_order_no) = (a.channel, a.platform_order_no)
    and q.hold_reason = 'risk'
"""


# the queue's risk holds the rules alone made: their score above the review threshold, or
# customs data missing (the rest of the queue the learned model added)
RISK_RULES_ALONE_SQL = """
with bad as (
    select * from unnest(%(channels)s::text[], %(nos)s::text[]) as b(channel, platform_order_no)
),

rules_held as (
    select a.channel, a.platform_order_no
    from ops.risk_assessments a
    join ops.review_queue q using (channel, platform_order_no)
    where q.hold_reason = 'risk'
        and (coalesce(a.rule_score, a.score) > %(threshold)s or a.signals ? 'customs_incomplete')
)

select count(*), count(b.platform_order_no)
from rules_held r
left join bad b using (channel, platform_order_no)
"""


def print_risk_vs_truth(console: Console, conn: psycopg.Connection, truth: dict | None) -> None:
    """Recall, honest share held and precision of risk's review queue against the sandbox's
    verdicts, over the orders risk assessed."""
    if truth is None:
        return
    bad = [
        (o["channel"], o["platform_order_no"])
        for o in truth.get("orders", [])
        if {"fraud", "coupon_abuse"} & set(o.get("labels") or [])
    ]
    channels, nos = (list(c) for c in zip(*bad, strict=True)) if bad else ([], [])
    assessed, n_bad, held, caught, scorers = conn.execute(
        RISK_TRUTH_SQL, {"channels": channels, "nos": nos}
    ).fetchone()
    honest = assessed - n_bad
    recall = f"{caught / n_bad:.1%}" if n_bad else "n/a"
    honest_held = f"{(held - caught) / honest:.2%}" if honest else "n/a"
    precision = f"{caught / held:.1%}" if held else "n/a"
    console.print(
        f"risk vs the sandbox's verdicts (fraud, coupon_abuse): {assessed:,} orders assessed, "
        f"{n_bad} bad; review queue recall {recall}, honest orders held {honest_held}, "
        f"precision {precision} ({held} held; scored by {scorers or 'nothing'})"
    )
    from fulfillment.risk_rules import load_risk_rules

    threshold = load_risk_rules().review.threshold
    params = {"channels": channels, "nos": nos, "threshold": threshold}
    rules_held, rules_caught = conn.execute(RISK_RULES_ALONE_SQL, params).fetchone()
    alone = (
        f"  rules alone: recall {rules_caught / n_bad:.1%}"
        if n_bad
        else "  rules alone: recall n/a"
    )
    alone += ", honest orders held " + (
        f"{(rules_held - rules_caught) / honest:.2%}" if honest else "n/a"
    )
    alone += ", precision " + (f"{rules_caught / rules_held:.1%}" if rules_held else "n/a")
    if scorers and scorers != "rules alone":
        alone += f" ({rules_held} held); rules + model: the line above ({held - rules_held} more)"
    else:
        alone += (
            f" ({rules_held} held); rules + model: no model scored (ops/risk_model not trained)"
        )
    console.print(alone)


HEALTH_SQL = """
select channel, count(*) as days, avg(ohi) as mean_ohi, min(ohi) as min_ohi,
       (array_agg(ohi order by day desc))[1] as last_ohi
from marts.order_health_daily
group by channel
order by channel
"""


def print_watching(console: Console, conn: psycopg.Connection, truth: dict | None) -> None:
    """One sweep of every business watch (what the sensors do in live mode), the alerts
    delivered (to the outbox when no SMTP server is set), incident recall against the
    sandbox's truth, and the Order Health Index per channel."""
    from kernel.settings import Settings
    from quality.alerts import deliver_pending
    from quality.incident_scoring import score_incidents
    from quality.watches import run_watches

    now = datetime.now(UTC)
    results = run_watches(conn, now)
    report = deliver_pending(conn, now=now, limit=10_000)
    rows = conn.execute(
        "select rule, dedup_key, subject, facts from ops.alerts order by id"
    ).fetchall()
    alerts = [{"rule": r, "dedup_key": k, "subject": s, "facts": f} for r, k, s, f in rows]
    raised = sum(r.raised for r in results)
    console.print(
        f"watches: {len(results)} swept, {raised} alerts raised; ops.alerts holds {len(alerts)}; "
        f"emails: {report.sent} sent, {report.outbox} to {Settings().outbox}, "
        f"{report.failed} failed (retried by the alert_delivery sensor)"
    )
    if truth is not None and "incidents" in truth:
        score = score_incidents(truth["incidents"], alerts)
        table = Table(title="incidents planted by the sandbox vs alerts raised (recall)")
        for name in ("incident kind", "alert rule", "planted", "caught", "recall"):
            table.add_column(name, justify="left" if "kind" in name or "rule" in name else "right")
        for kind in sorted(score.kinds.values(), key=lambda k: k.kind):
            recall = f"{kind.recall:.0%}" if kind.recall is not None else "-"
            table.add_row(kind.kind, kind.rule, str(kind.incidents), str(kind.caught), recall)
        table.add_section()
        total = f"{score.recall:.0%}" if score.recall is not None else "-"
        table.add_row("total", "", str(score.incidents), str(score.caught), total)
        console.print(table)
        by_rule = Counter(a["rule"] for a in score.false_alarms)
        console.print(
            f"alerts no planted incident explains: {len(score.false_alarms)}"
            + (f" ({', '.join(f'{r} {n}' for r, n in sorted(by_rule.items()))})" if by_rule else "")
        )
    try:
        health = conn.execute(HEALTH_SQL).fetchall()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return
    table = Table(title="Order Health Index per channel (marts.order_health_daily)")
    for name in ("channel", "days", "mean", "lowest", "last day"):
        table.add_column(name, justify="left" if name == "channel" else "right")
    for channel, days, mean, low, last in health:
        cells = [f"{v:.1f}" if v is not None else "-" for v in (mean, low, last)]
        table.add_row(channel, str(days), *cells)
    console.print(table)


def print_promise_accuracy(console: Console, conn: psycopg.Connection, truth: dict | None) -> None:
    """The stored promises against the sandbox's deliveries: the sandbox plays each accepted
    allocation's future to the end at once (its truth is the clock advanced past every
    delivery), on the model's clock that the promises count on."""
    from fulfillment.promise_accuracy import read_promises, score_promises

    played = (truth or {}).get("deliveries") or []
    deliveries = pd.DataFrame(
        [
            {
                "channel": d["channel"],
                "platform_order_no": d["platform_order_no"],
                "warehouse_id": d["warehouse_id"],
                "carrier": d["carrier"],
                "delivered_at": d.get("delivered_at_model", d["delivered_at"]),
            }
            for d in played
        ],
        columns=["channel", "platform_order_no", "warehouse_id", "carrier", "delivered_at"],
    )
    accuracy = score_promises(read_promises(conn), deliveries)
    where = (
        f"the sandbox's played futures of the {len(played):,} allocations its WMS accepted"
        if played
        else "the sandbox's WMS played no allocation"
    )
    console.print(f"{accuracy.sentence()} ({where})")


def print_step_failures(console: Console, result) -> None:
    """Each failed step of a run with the last line of its error."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            detail = error.message.strip().splitlines()[-1] if error else event.message
            console.print(f"[red]failed[/] {event.step_key}: {detail}")


def _backfill_config(oldest: datetime | None) -> dict:
    """Pull every marketplace far enough back to cover the oldest published order (a scenario
    may hold orders older than the channels' default first-run look-back)."""
    from connectors.channels_config import load_channels
    from orchestration.ingest.assets import orders_asset_key

    if oldest is None:
        return {}
    days = max(1, math.ceil((datetime.now(UTC) - oldest).total_seconds() / 86400) + 1)
    return {
        orders_asset_key(channel).to_python_identifier(): {"config": {"backfill_days": days}}
        for channel in load_channels().of_kind("marketplace")
    }


def running_sandbox_oldest(home: Path) -> datetime | None:
    """The oldest order of the world `orderpulse sandbox serve` publishes for `home` (from
    sandbox.json): how far back the run must pull; None for a streamed world (the channels'
    first-run look-back, as the demo has it)."""
    generated = json.loads((home / "sandbox.json").read_text(encoding="utf-8"))["generated"]
    oldest = generated.get("oldest_order")
    return datetime.fromisoformat(oldest) if oldest else None


def _peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_demo(
    console: Console,
    *,
    home: Path,
    seed: int,
    orders: int,
    days: int,
    scenario: Path | None,
    add: bool,
    calm: bool = False,
    sandbox_running: bool = False,
) -> bool:
    """Publish a world (or, with `sandbox_running`, use the one `orderpulse sandbox serve` runs
    for `home`, in its own process), run the whole graph once, print the summary."""
    from orchestration.definitions import defs
    from sandbox.server import STATIC_END_AGO, Sandbox

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("orderpulse_full_run")
    started = time.monotonic()
    log_path = home / "logs" / f"demo-{datetime.now():%Y%m%d-%H%M%S}.log"
    if sandbox_running:
        console.print(f"[bold]sandbox[/] the running one of {home / 'sandbox.json'}")
        run_id, result = _run_with_progress(
            console, job, instance, log_path, _backfill_config(running_sandbox_oldest(home))
        )
        run_peak = _peak_rss_mib()  # before the truth is read for the summary
        truth_path = home / "sandbox" / "truth.json"
        # parsed whole, a 1 M-order truth would take this process over 2 GiB
        truth = read_digest(truth_path) if truth_path.exists() else None
    else:
        # The world ends a few minutes ago, as a static `sandbox serve` world does: PDD serves
        # only windows that end at least 3 minutes before its clock.
        end = datetime.now(UTC).replace(second=0, microsecond=0) - STATIC_END_AGO
        with Sandbox(
            home, seed=seed, orders=orders, days=days, end=end, scenario=scenario, add=add,
            erp_admin_url=os.environ.get("ORDERPULSE_WAREHOUSE_URL"), calm=calm,
        ) as sb:  # fmt: skip
            errors = getattr(sb, "scenario_errors", []) or []
            for error in errors:
                console.print(f"[yellow]scenario rejected[/] {error}")
            console.print(
                f"[bold]sandbox[/] published {len(sb.truth()['orders']):,} orders "
                f"({time.monotonic() - started:.1f}s); endpoints in {home / 'sandbox.json'}"
            )
            oldest = min((o.created_at for o in sb.world.orders), default=None)
            run_id, result = _run_with_progress(
                console, job, instance, log_path, _backfill_config(oldest)
            )
            run_peak = _peak_rss_mib()
            truth = sb.truth()
    console.print(f"dbt and run output: {log_path}", soft_wrap=True)
    if not result.success:
        print_step_failures(console, result)
        console.print(f"details: {log_path} and the run in the Dagster UI (`orderpulse up`)")
    try:
        with psycopg.connect(os.environ["ORDERPULSE_WAREHOUSE_URL"]) as conn:
            total = print_summary(console, conn, truth)
            print_decisions(console, conn)
            print_promise_accuracy(console, conn, truth)
            print_decisions_vs_truth(console, conn, truth)
            print_risk_vs_truth(console, conn, truth)
            print_watching(console, conn, truth)
    except psycopg.errors.UndefinedTable:
        console.print("[red]marts.fct_orders does not exist: the dbt step did not build it[/]")
        total = 0
    status = "[green]succeeded[/]" if result.success else "[red]failed[/]"
    console.print(
        f"run {run_id} {status} in {time.monotonic() - started:.0f}s (peak memory of this "
        f"process by the run's end: {run_peak:,} MiB); {total:,} orders in marts.fct_orders. "
        "Open the UI with `orderpulse up`."
    )
    return result.success and total > 0
