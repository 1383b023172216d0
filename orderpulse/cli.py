"""`orderpulse`: demo, up, db, sandbox and load-file commands.

Errors reach the user as one line each, naming the fix; `orderpulse --debug ...` shows the
full traceback instead. Exit codes: 0 done, 1 failed, 2 bad arguments (click's usage error),
3 `load-file` loaded the file but rejected rows."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kernel import runtime
from kernel.database import (
    DatabaseError,
    psql_path,
    redact,
    stop_embedded,
    warehouse,
)
from kernel.settings import get_settings

EXIT_REJECTED_ROWS = 3  # `load-file`: loaded, but some rows went to raw.rejected_rows
_state = {"debug": False}


class _GuardedTyper(typer.Typer):
    """The root app: every error becomes one line with its fix, unless `--debug`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, standalone_mode=False, **kwargs)
        except typer.Exit as exc:
            return exc.exit_code
        except typer.Abort:
            err.print("aborted")
            return 1
        except typer.TyperException as exc:  # click's usage errors (typer vendors click)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err.print(f"[bold red]error:[/] {escape(exc.format_message())}{hint}", soft_wrap=True)
            return getattr(exc, "exit_code", 2)
        except Exception as exc:
            if _state["debug"]:
                raise
            err.print(f"[bold red]error:[/] {_one_line(exc)}", soft_wrap=True, markup=True)
            return 1


def _one_line(exc: BaseException) -> str:
    """An exception as the user reads it: OrderPulse's own errors already name the fix;
    anything else says what it is and where the traceback is."""
    from kernel.config import ConfigError

    if isinstance(exc, ConfigError | DatabaseError):
        return escape(str(exc))
    text = " ".join(str(exc).split()) or "(no message)"
    hint = " (run `orderpulse --debug ...` for the traceback)"
    return escape(f"{type(exc).__name__}: {text}") + hint


app = _GuardedTyper(
    help="OrderPulse: the order data platform.", no_args_is_help=True,
    pretty_exceptions_enable=False,
)  # fmt: skip
db_app = typer.Typer(help="The warehouse PostgreSQL.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The local stand-in for the outside world.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")
rules_app = typer.Typer(
    help="The rule files under config/ that operations edit.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
console = Console()
err = Console(stderr=True)


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error.")
    ] = False,
) -> None:
    """OrderPulse: the order data platform."""
    _state["debug"] = debug


ScenarioOpt = Annotated[
    Path | None,
    typer.Option("--scenario", help="JSON Lines file of orders to publish (see README).",
                 exists=True, dir_okay=False),
]  # fmt: skip
AddOpt = Annotated[
    bool, typer.Option("--add", help="Publish the scenario beside generated orders.")
]
OrdersOpt = Annotated[
    int, typer.Option("--orders", min=1, max=10_000_000, help="Generated orders.")
]
DaysOpt = Annotated[int, typer.Option("--days", min=1, max=366, help="Simulated days of history.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="World generator seed.")]
CalmOpt = Annotated[
    bool, typer.Option("--calm", help="A sandbox world without incidents (for false alarms).")
]


def _fail(message: str) -> None:
    # one line: a driver's message may carry its own line breaks
    err.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True)
    raise typer.Exit(1)


def _check_configs() -> None:
    """Refuse to start when any rule file is invalid: before any data is touched."""
    from rich.markup import escape

    from orderpulse.preflight import config_problems

    problems = config_problems()
    for problem in problems:
        err.print(f"[bold red]invalid config:[/] {escape(problem)}", soft_wrap=True)
    if problems and _state["debug"]:
        from kernel.config import CONFIG_DIR
        from orderpulse.preflight import rule_loaders

        for kind, load in rule_loaders().items():  # the first broken file raises, in full
            load(CONFIG_DIR / f"{kind}.yaml")
    if problems:
        err.print("nothing was changed; fix the file(s) above (`orderpulse rules check`)")
        raise typer.Exit(1)


def _reach_warehouse():
    try:
        return runtime.prepare()
    except DatabaseError as exc:
        if _state["debug"]:
            raise
        _fail(str(exc))


def _prepare_everything(conn=None):
    """What every command that runs the pipeline needs first: valid rule files, the warehouse
    (embedded or external) with its schemas, the tables OrderPulse's code owns (raw orders,
    ops decisions), and a current dbt manifest (dagster-dbt's preparer: `dbt parse`)."""
    import psycopg

    from orchestration.dbt.project import prepare_manifest
    from orchestration.resources import ensure_owned_tables

    if conn is None:
        _check_configs()
        conn = _reach_warehouse()
    with psycopg.connect(conn.url()) as db:
        ensure_owned_tables(db)
    prepare_manifest()
    _limit_pools()
    return conn


def _limit_pools() -> None:
    """Dagster concurrency pools OrderPulse relies on, unless an operator set them already."""
    import dagster as dg

    from orchestration.dbt.assets import POOLS

    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        for pool in set(POOLS) - set(storage.get_concurrency_keys()):
            storage.set_concurrency_slots(pool, 1)


@app.command("prepare")
def prepare() -> None:
    """Create the warehouse schemas and owned tables and parse the dbt project (what `demo`
    and `up` do first; run it before `dbt` by hand on a new warehouse)."""
    conn = _prepare_everything()
    console.print(f"warehouse ready: {redact(conn.url())}; dbt manifest current")


# -- db ----------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (or check the external one) and create the schemas."""
    try:
        conn = runtime.prepare()
    except DatabaseError as exc:
        _fail(str(exc))
    console.print(f"warehouse ready: {redact(conn.url())}")


@db_app.command("url")
def db_url(
    show_password: Annotated[bool, typer.Option(help="Print the password (default: yes)")] = True,
) -> None:
    """Print the warehouse URL (starting the embedded server if needed)."""
    try:
        conn = runtime.prepare()
    except DatabaseError as exc:
        _fail(str(exc))
    print(conn.url() if show_password else redact(conn.url()))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server of this ORDERPULSE_HOME."""
    settings = get_settings()
    if settings.pg_url:
        _fail("ORDERPULSE_PG_URL names an external server; OrderPulse does not stop it")
    console.print("stopped" if stop_embedded(settings) else "not running")


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql (the one shipped with the embedded server) on the warehouse."""
    conn = runtime.prepare()
    psql = psql_path() if psql_path().exists() else "psql"
    env = {**os.environ, "PGPASSWORD": conn.password}
    cmd = [str(psql), "-h", conn.host, "-p", str(conn.port), "-U", conn.user, "-d", conn.dbname]
    raise typer.Exit(subprocess.call([*cmd, *ctx.args], env=env))


# -- sandbox -----------------------------------------------------------------------------------
@sandbox_app.command("serve")
def sandbox_serve(
    scenario: ScenarioOpt = None,
    add: AddOpt = False,
    live: Annotated[
        bool, typer.Option("--live", help="Keep producing orders in real time.")
    ] = False,
    orders: OrdersOpt = 10_000,
    days: DaysOpt = 3,
    seed: SeedOpt = 7,
    calm: CalmOpt = False,
    full_world: Annotated[
        bool,
        typer.Option(
            "--full-world",
            help="Above 200,000 orders too: every channel and the merchant systems' records, "
            "held in memory (about 1.6 GiB per 100,000 orders); default there: marketplaces "
            "only, streamed.",
        ),
    ] = False,
) -> None:
    """Run every sandbox server on loopback until Ctrl-C; endpoints go to sandbox.json."""
    from sandbox.server import run_sandbox_cli

    _check_configs()  # the sandbox serves the channels of config/channels.yaml
    settings = get_settings()
    runtime.prepare(settings)  # the ERP stand-in database lives on the warehouse's server
    run_sandbox_cli(
        settings.home_dir, seed, orders, days, scenario, add, live, calm=calm, full_world=full_world
    )


@sandbox_app.command("truth")
def sandbox_truth() -> None:
    """Print the ground truth of the last published sandbox world as JSON."""
    path = get_settings().home_dir / "sandbox" / "truth.json"
    if not path.exists():
        _fail(f"{path} does not exist: run `orderpulse demo` or `orderpulse sandbox serve` first")
    sys.stdout.write(path.read_text(encoding="utf-8"))
    if not path.read_text(encoding="utf-8").endswith("\n"):
        sys.stdout.write("\n")


# -- files -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _file_progress(path: Path):
    """A progress display of the rows read (files load in chunks of whole orders); quiet when
    the output is not a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("loading {task.description}"), BarColumn(),
               TextColumn("{task.completed:,} rows"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(path.name, total=None)
        yield lambda rows: bar.update(task, completed=rows)


@app.command("load-file")
def load_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX file")],
    source: Annotated[str, typer.Option("--source", help="Configured file source, e.g. pos")],
) -> None:
    """Load one file by hand and report rows loaded and every problem of every rejected row.
    Exit code 0: every row loaded; 3: loaded, but rows were rejected (raw.rejected_rows);
    1: the file could not be loaded (or held no rows)."""
    import psycopg
    from rich.markup import escape

    from connectors.channels_config import load_channels
    from connectors.csv_orders import rejected_rows
    from connectors.file_drop import load_file as load

    _check_configs()
    try:
        load_channels().file_source(source)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from None
    conn_facts = _reach_warehouse()
    with psycopg.connect(conn_facts.url()) as conn, _file_progress(path) as on_chunk:
        report = load(conn, path, source, on_chunk=on_chunk)
        # every rejected row with all its problems: the parser's and the edge rules' alike
        rejects = rejected_rows(conn, source, report.file) if report.rows_rejected else []
    # the report's head (its own list of rejects is cut at 20 and misses the edge rules')
    head = [line for line in report.render(max_reasons=0).splitlines() if "…" not in line]
    console.print(escape("\n".join(head)), soft_wrap=True)
    for row in rejects:
        console.print(escape(f"    line {row['line_no']}: {row['reason']}"), soft_wrap=True)
    if not report.ok or (report.rows_loaded == 0 and report.rows_rejected == 0):
        raise typer.Exit(1)
    if report.rows_rejected:
        err.print(
            f"{report.rows_rejected} rows rejected (exit code {EXIT_REJECTED_ROWS}): fix them "
            "in the file and load it again",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_REJECTED_ROWS)


@app.command("backfill")
def backfill(
    days: Annotated[int, typer.Option(min=1, max=366, help="How far back to pull")] = 3,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="A marketplace to pull (repeat it); default: all"),
    ] = None,
    downstream: Annotated[
        bool,
        typer.Option(
            "--downstream/--no-downstream", help="Then rebuild dbt, the decisions and reports"
        ),
    ] = True,
) -> None:
    """Pull the marketplaces' orders modified in the last DAYS days (the schedules' signed,
    windowed, paged pulls, from further back) with a progress bar; by default everything that
    reads them is rebuilt after. Idempotent: orders already in raw change only if they did."""
    from connectors.channels_config import load_channels
    from orderpulse.backfill import run_backfill

    _check_configs()
    marketplaces = load_channels().of_kind("marketplace")
    unknown = sorted(set(channel or []) - set(marketplaces))
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: not a marketplace (one of {', '.join(marketplaces)})",
            param_hint="--channel",
        )
    _prepare_everything()
    chosen = [c for c in marketplaces if not channel or c in channel]
    ok = run_backfill(
        console, home=get_settings().home_dir, channels=chosen, days=days, downstream=downstream
    )
    if not ok:
        raise typer.Exit(1)


@app.command("review")
def review(
    order: Annotated[str, typer.Argument(help="The held order: its number, or channel:number")],
    release: Annotated[bool, typer.Option("--release", help="Let it ship")] = False,
    intercept: Annotated[bool, typer.Option("--intercept", help="Stop it (it closes)")] = False,
    note: Annotated[str | None, typer.Option(help="Why, for the record")] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Who decides (default: the login name)")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="The channel, when a number is on two")
    ] = None,
) -> None:
    """Decide an order risk holds for review: --release or --intercept. Recorded once with the
    reviewer, time and note in ops.review_queue (never overwritten); live mode moves the order
    on at its next automation tick."""
    import getpass

    import psycopg

    from fulfillment.review import PAST, ReviewError, record_review

    if release == intercept:
        raise typer.BadParameter("give exactly one of --release and --intercept")
    decision = "release" if release else "intercept"
    who = reviewer or os.environ.get("USER") or getpass.getuser()
    conn_facts = _reach_warehouse()
    try:
        with psycopg.connect(conn_facts.url()) as conn:
            outcome = record_review(
                conn, order, decision, who, datetime.now(UTC), note=note, channel=channel
            )
    except ReviewError as exc:
        _fail(str(exc))
    console.print(
        f"{outcome.channel}:{outcome.platform_order_no} {PAST[decision]} by {who} "
        f"(risk score {outcome.score if outcome.score is not None else '-'}): "
        f"{outcome.next_step}",
        soft_wrap=True,
    )
    _tell_automation(outcome)


def _tell_automation(outcome) -> None:
    """Record the review as a change of `ops/risk_assessments` in Dagster's event log, so the
    automation (routing, locks, marts) reacts at its next tick instead of at the next order."""
    import dagster as dg

    try:
        with dg.DagsterInstance.get() as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=["ops", "risk_assessments"],
                    description=f"review: {outcome.channel}:{outcome.platform_order_no} "
                    f"{outcome.decision} by {outcome.reviewer}",
                    metadata={"review_decision": outcome.decision, "reviewer": outcome.reviewer},
                )
            )
    except Exception as exc:  # noqa: BLE001 - the decision is recorded; Dagster just learns later
        err.print(f"[yellow]note:[/] Dagster was not told ({exc}); the next risk run picks it up")


# -- rules -------------------------------------------------------------------------------------
def _rule_loaders() -> dict[str, object]:
    """Each kind of rule file (config/<kind>.yaml) and the loader that validates it."""
    from orderpulse.preflight import rule_loaders

    return rule_loaders()


@rules_app.command("check")
def rules_check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files to check (default: every rule file under config/); the "
            "kind comes from the name: channels*, routing*, risk*, inventory*, alerts*, "
            "data_checks*, health_index*.yaml"
        ),
    ] = None,
) -> None:
    """Validate rule files; each problem names the file, the key and the fix."""
    from kernel.config import CONFIG_DIR, ConfigError
    from orderpulse.preflight import kind_of

    loaders = _rule_loaders()
    targets: list[tuple[Path, object]] = []
    for path in files or [CONFIG_DIR / f"{kind}.yaml" for kind in loaders]:
        kind = kind_of(path, list(loaders))
        if kind is None:
            _fail(f"{path}: not a known rule file (names start with {', '.join(loaders)})")
        targets.append((path, loaders[kind]))
    failed = False
    for path, load in targets:
        try:
            load(path)
        except ConfigError as exc:
            failed = True
            err.print(f"[red]invalid[/] {exc}")
        else:
            console.print(f"[green]ok[/] {path}")
    if failed:
        raise typer.Exit(1)


@rules_app.command("simulate")
def rules_simulate(
    proposed: Annotated[
        Path, typer.Argument(help="A proposed copy of config/routing.yaml", exists=True)
    ],
    days: Annotated[int, typer.Option("--days", min=1, help="Replay this many days")] = 7,
) -> None:
    """Replay the last days' paid orders through a proposed routing file, beside the current
    one; prints what would change. Writes nothing."""
    from datetime import UTC, datetime

    import psycopg

    from fulfillment.routing_rules import load_routing_rules
    from fulfillment.routing_store import simulate_rules
    from kernel.config import ConfigError

    try:
        current, candidate = load_routing_rules(), load_routing_rules(proposed)
    except ConfigError as exc:
        _fail(str(exc))
    try:
        conn = runtime.prepare()
    except DatabaseError as exc:
        _fail(str(exc))
    with psycopg.connect(conn.url()) as db:
        try:
            report = simulate_rules(db, current, candidate, datetime.now(UTC), days)
        except psycopg.errors.UndefinedTable as exc:
            _fail(
                f"the warehouse has no orders to replay yet ({exc.diag.message_primary}): "
                "run `orderpulse demo` or `orderpulse up` first"
            )
    s = report.summary()
    console.print(
        f"{s['orders']:,} orders paid in the last {days} days; {s['changed']:,} decisions change "
        f"({s['current_version']} -> {s['proposed_version']})"
    )
    table = Table("rule now", "rule proposed", "orders", "freight ¥ change", "promise days change")
    for row in s["by_rule"]:
        table.add_row(
            str(row["rule_from"]), str(row["rule_to"]), f"{int(row['orders']):,}",
            f"{row['freight_delta']:+,.2f}", f"{row['promise_days_delta']:+.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"freight cost ¥{s['freight_cost_current']:,.2f} -> ¥{s['freight_cost_proposed']:,.2f} "
        f"({s['freight_cost_delta']:+,.2f}); mean promise {s['promise_days_current']:.2f} -> "
        f"{s['promise_days_proposed']:.2f} days"
    )


# -- demo and up -------------------------------------------------------------------------------
@app.command("demo")
def demo(
    scenario: ScenarioOpt = None,
    add: AddOpt = False,
    orders: OrdersOpt = 10_000,
    days: DaysOpt = 3,
    seed: SeedOpt = 7,
    calm: CalmOpt = False,
    reset: Annotated[
        bool | None,
        typer.Option(
            "--reset/--no-reset",
            help="Remove the previous world first (warehouse schemas, ingest cursors, POS drop "
            "folder, SFTP exports, outbox) so the warehouse holds exactly this world "
            "(default: yes on the embedded server, no on ORDERPULSE_PG_URL).",
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Reset without asking (asked only in a terminal)."),
    ] = False,
    sandbox_running: Annotated[
        bool,
        typer.Option(
            "--sandbox-running",
            help="Use the world `orderpulse sandbox serve` runs for this ORDERPULSE_HOME, in "
            "its own process, instead of publishing one here (no reset: start it on an empty "
            "home; bench/full_flow.py measures the pipeline's memory this way).",
        ),
    ] = False,
) -> None:
    """Publish a sandbox world, materialise the whole asset graph once, print a summary."""
    if add and scenario is None:
        raise typer.BadParameter("--add needs --scenario FILE", param_hint="--add")
    if sandbox_running:
        if scenario is not None:
            raise typer.BadParameter(
                "the running sandbox publishes its own world: give --scenario to "
                "`orderpulse sandbox serve`",
                param_hint="--scenario",
            )
        if reset:
            raise typer.BadParameter(
                "a reset would remove the running sandbox's SFTP exports and POS files: reset "
                "first (`orderpulse demo --reset` or a new ORDERPULSE_HOME), then start it",
                param_hint="--reset",
            )
        _check_running_sandbox(get_settings().home_dir)
    _check_configs()  # before anything is emptied
    conn = _reach_warehouse()
    console.print(f"[bold]warehouse[/] {redact(conn.url())}")
    if not sandbox_running and (reset if reset is not None else not get_settings().pg_url):
        _reset_world(conn, get_settings().home_dir, ask=not yes and sys.stdin.isatty())
    _prepare_everything(conn)
    from orderpulse.demo import run_demo  # imports Dagster: after the quick checks

    ok = run_demo(
        console, home=get_settings().home_dir, seed=seed, orders=orders, days=days,
        scenario=scenario, add=add, calm=calm, sandbox_running=sandbox_running,
    )  # fmt: skip
    if not ok:
        raise typer.Exit(1)


def _check_running_sandbox(home: Path) -> None:
    """sandbox.json names a sandbox and its gateways answer on loopback."""
    import json
    import socket
    from urllib.parse import urlsplit

    path = home / "sandbox.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        urls = [c["base_url"] for c in document["channels"].values()]
        document["generated"]["end"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(f"{path}: no running sandbox described ({_one_line(exc)}); start "
              "`orderpulse sandbox serve` for this ORDERPULSE_HOME first")  # fmt: skip
    for url in urls:
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=2).close()
        except OSError:
            _fail(f"nothing answers at {url} ({path}): the sandbox is not running; start "
                  "`orderpulse sandbox serve` for this ORDERPULSE_HOME first")  # fmt: skip


def _reset_world(conn, home: Path, *, ask: bool) -> None:
    """Say what the reset removes; in a terminal, ask first (a refusal changes nothing).
    Without a terminal (make demo, CI, tests) it proceeds: unattended runs must not hang."""
    from orderpulse.reset import apply_reset, plan_reset

    plan = plan_reset(conn, home)
    console.print("reset removes the previous world (--no-reset keeps it):")
    for line in plan.describe():
        console.print(f"  {line}", soft_wrap=True, markup=False)
    if ask and not plan.is_empty and not typer.confirm("Remove all of this?", default=False):
        _fail("nothing was removed (answer y, pass --yes, or use --no-reset)")
    apply_reset(conn, plan)
    console.print("removed; the warehouse schemas are empty")


@app.command("up")
def up(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dagster UI port")] = 3000,
    live: Annotated[bool, typer.Option(help="Sandbox keeps producing orders")] = True,
    orders: OrdersOpt = 10_000,
    days: DaysOpt = 3,
    seed: SeedOpt = 7,
    calm: CalmOpt = False,
    initial_run: Annotated[
        bool,
        typer.Option(
            "--initial-run/--no-initial-run",
            help="Queue one run of the whole graph at start, so every asset is current "
            "without waiting for the first schedule tick.",
        ),
    ] = True,
    decision_worker: Annotated[
        bool,
        typer.Option(
            "--decision-worker/--no-decision-worker",
            help="Decide newly loaded orders in a long-lived process within seconds (runs of "
            "the live_decisions job); without it the automation sensor's runs decide.",
        ),
    ] = True,
) -> None:
    """Start the warehouse, the sandbox, the webhook receiver, `dagster dev` (webserver and
    daemon: schedules, sensors and declarative automation keep everything current) and the
    decision worker (orchestration/decision_worker.py)."""
    from orderpulse.services import start_services

    # started in the background by a script, a process inherits SIGINT ignored, and so would
    # the processes it starts: Ctrl-C (or `kill -INT`) must still stop everything
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _prepare_everything()
    services = start_services(
        console, home=get_settings().home_dir, live=live, seed=seed, orders=orders, days=days,
        calm=calm,
    )  # fmt: skip
    bin_dir = Path(sys.executable).parent
    workspace = str(runtime.project_root() / "workspace.yaml")
    # with the worker, the code location hands it the decisions' path (orchestration/
    # definitions.py); without, the automation keeps them, whatever the shell had set
    os.environ["ORDERPULSE_DECISION_WORKER"] = "1" if decision_worker else "0"
    cmd = [str(bin_dir / "dagster"), "dev", "-w", workspace, "-p", str(port), "-h", "127.0.0.1"]
    console.print(f"Dagster UI: [link]http://127.0.0.1:{port}[/link]  (Ctrl-C stops everything)")
    # its own process group: on the way out the webserver, daemon and code server all go
    proc = subprocess.Popen(cmd, cwd=runtime.project_root(), start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if initial_run:
        launch = [str(bin_dir / "dagster"), "job", "launch", "-w", workspace,
                  "-j", "orderpulse_full_run"]  # fmt: skip
        # queued: the daemon of `dagster dev` starts it as soon as it is up
        result = subprocess.run(
            launch, cwd=runtime.project_root(), capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            console.print("queued one run of the whole graph (orderpulse_full_run)")
        else:
            err.print(f"[yellow]could not queue the initial run:[/] {result.stderr[-500:]}")
    worker = _start_decision_worker() if decision_worker else None
    started_at = time.monotonic()
    if worker is not None:
        console.print("decision worker: deciding new orders as they land (live_decisions)")
    try:
        while proc.poll() is None:
            time.sleep(2)
            # the automation leaves the decisions to the worker: it must not stay down (but a
            # worker that cannot start is not restarted more than twice a minute)
            exited = worker is not None and worker.poll() is not None
            if exited and time.monotonic() - started_at >= 30:
                err.print(f"[yellow]decision worker exited ({worker.returncode}); restarting[/]")
                worker, started_at = _start_decision_worker(), time.monotonic()
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        if worker is not None:
            # SIGTERM: during a pass Dagster takes SIGINT for itself and the loop would go on
            _stop_group(worker, stop_signal=signal.SIGTERM)
        _stop_group(proc)
        services.stop()


def _start_decision_worker() -> subprocess.Popen:
    """`python -m orchestration.decision_worker` in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.decision_worker"],
        cwd=runtime.project_root(), start_new_session=True,
    )  # fmt: skip


def _stop_group(
    proc: subprocess.Popen, grace: float = 20.0, stop_signal: int = signal.SIGINT
) -> None:
    """SIGINT the process group (dagster dev shuts down cleanly), SIGKILL what is left."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, stop_signal)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@app.command("docs")
def docs(
    serve: Annotated[bool, typer.Option(help="Serve the site after generating it")] = True,
    port: Annotated[int, typer.Option(help="Port of the docs site")] = 8080,
) -> None:
    """Generate the dbt docs (every model and column of the marts) and serve them."""
    _prepare_everything()
    project = runtime.project_root() / "dbt_project"
    dbt = str(Path(sys.executable).parent / "dbt")
    common = ["--project-dir", str(project), "--profiles-dir", str(project)]
    code = subprocess.call([dbt, "docs", "generate", *common], cwd=project)
    if code != 0:
        _fail("dbt docs generate failed (see above)")
    if serve:
        console.print(f"dbt docs: http://127.0.0.1:{port}  (Ctrl-C stops)")
        subprocess.call(
            [dbt, "docs", "serve", *common, "--port", str(port), "--host", "127.0.0.1",
             "--no-browser"],
            cwd=project,
        )  # fmt: skip


@app.command("status")
def status() -> None:
    """Where things are: home, warehouse, sandbox endpoints."""
    settings = get_settings()
    table = Table("what", "where")
    table.add_row("home", str(settings.home_dir))
    try:
        table.add_row("warehouse", redact(warehouse(settings).url()))
    except DatabaseError as exc:
        table.add_row("warehouse", str(exc))
    if settings.sandbox_file.exists():
        channels = json.loads(settings.sandbox_file.read_text()).get("channels", {})
        for name, entry in channels.items():
            table.add_row(f"sandbox {name}", entry.get("base_url", ""))
    console.print(table)


if __name__ == "__main__":
    app()
