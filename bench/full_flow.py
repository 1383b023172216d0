"""The whole flow a merchant lives with, at backfill size: N orders (default 1,000,000) of all
ten channels, with their merchant records, through ingest -> dbt build -> decisions (routing,
locks, merges, risk) -> quality checks and reports, the way `orderpulse demo` runs it (one
Dagster run of `orderpulse_full_run`, in process, on a scratch ORDERPULSE_HOME).

    .venv/bin/python bench/full_flow.py [--orders 1000000] [--days 3] [--out result.json]

The sandbox (the platforms, merchant systems, SFTP and ERP stand-ins, with the whole world in
memory: about 1.6 GiB per 100,000 orders) runs in a process of its own,
`orderpulse sandbox serve --full-world`, and the run is `orderpulse demo --sandbox-running`, so
the pipeline's memory is measured apart from the stand-in's (`--sandbox here`: the world in the
demo process, as `make demo` has it). Then it reads the run's step timings from that home's
Dagster instance and adds them up per stage:

- ingest: steps of group `ingest` (marketplace pulls, SFTP, ERP/H5 mall bridge, POS, merchant
  systems), bound by the gateways' detail calls;
- transform: the dbt ops (groups staging/intermediate/marts: `dbt build`, models and
  their data tests);
- decisions: groups `enrichment` (addresses) and `fulfillment` (routing, locks, merges, risk);
- quality: steps that materialise nothing (Great Expectations checks and other asset checks)
  and the reports.

Figures: seconds per stage, orders/s of each stage and of the whole, the run's wall time, and
the peak memory (VmHWM, sampled every second from /proc) of each process: the demo (the run's
steps execute in it; its peak by the run's end, before the summary reads the truth, as it
reports it), every dbt it started, the sandbox, and the embedded PostgreSQL's largest backend;
and the largest rises of the demo's peak between two samples, with the steps running at each
(which step sets the pipeline's peak, since the run's steps execute in that process).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "transform", "decisions", "quality")
MODEL_SECONDS: dict[str, float] = {}  # filled by step_seconds(): dbt model -> seconds
TEST_SECONDS: dict[str, float] = {}  # filled by step_seconds(): dbt data test -> seconds
STEP_WINDOWS: dict[str, tuple[float, float]] = {}  # filled by step_seconds(): step -> start, end
STEP_STAGES: dict[str, str] = {}  # filled by step_seconds(): step -> stage
RUN_WINDOW: list[float] = []  # filled by step_seconds(): the run's start and end (epoch s)
# filled by step_seconds(): dbt model or data test -> (end, epoch s; the asset it belongs to)
DBT_ENDS: dict[str, tuple[float, str]] = {}


# Dagster asset groups -> stages; a step that materialises nothing (checks only) is quality
GROUP_STAGE = {
    "ingest": "ingest", "staging": "transform", "intermediate": "transform",
    "marts": "transform", "enrichment": "decisions", "fulfillment": "decisions",
}  # fmt: skip


def step_seconds(home: Path) -> tuple[dict[str, float], dict[str, float], float]:
    """Per stage and per step: seconds, from the last run in `home`'s Dagster instance; and the
    run's wall time. A step's stage is its materialised assets' group (quality otherwise)."""
    sys.path.insert(0, str(ROOT))
    os.environ["ORDERPULSE_HOME"] = str(home)
    import dagster as dg

    from kernel import runtime
    from orchestration.dbt.project import prepare_manifest

    runtime.prepare()
    prepare_manifest()
    from orchestration.definitions import defs

    graph = defs.get_repository_def().asset_graph
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records(limit=1)
        run_id = record.dagster_run.run_id
        stats = instance.get_run_step_stats(run_id)
        wall = (record.end_time or time.time()) - (record.start_time or time.time())
        stage_of: dict[str, str] = {}
        for event in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1_000_000
        ).records:
            entry = event.event_log_entry
            key = entry.dagster_event.asset_key
            group = graph.get(key).group_name
            stage_of.setdefault(entry.step_key, GROUP_STAGE.get(group, "quality"))
            duration = entry.dagster_event.materialization.metadata.get("Execution Duration")
            if duration is not None:  # a dbt model's own time inside its dbt step
                MODEL_SECONDS[key.to_user_string()] = float(duration.value)
                DBT_ENDS[key.to_user_string()] = (entry.timestamp, key.to_user_string())
        for event in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1_000_000
        ).records:
            check = event.event_log_entry.dagster_event.event_specific_data
            duration = check.metadata.get("Execution Duration")
            if duration is not None:  # a dbt data test's own time inside its dbt step
                name = f"{check.asset_key.to_user_string()}:{check.check_name}"
                TEST_SECONDS[name] = float(duration.value)
                DBT_ENDS[name] = (event.event_log_entry.timestamp, check.asset_key.to_user_string())
    steps = {s.step_key: s.end_time - s.start_time for s in stats if s.start_time and s.end_time}
    STEP_WINDOWS.update(
        {s.step_key: (s.start_time, s.end_time) for s in stats if s.start_time and s.end_time}
    )
    stages = dict.fromkeys(STAGES, 0.0)
    for key, seconds in steps.items():
        stages[stage_of.get(key, "quality")] += seconds
        STEP_STAGES[key] = stage_of.get(key, "quality")
    RUN_WINDOW[:] = [record.start_time or 0.0, record.end_time or time.time()]
    return stages, steps, wall


def stage_spans() -> dict[str, float]:
    """Seconds from each stage's first step start to its last step end (after `step_seconds`).
    Steps run side by side (orchestration/threaded_executor.py), so a stage's summed step
    seconds can exceed its span, and spans overlap."""
    spans: dict[str, float] = {}
    for stage in STAGES:
        windows = [w for k, w in STEP_WINDOWS.items() if STEP_STAGES.get(k) == stage]
        if windows:
            spans[stage] = round(max(e for _, e in windows) - min(s for s, _ in windows), 1)
    return spans


def after_ingest_seconds() -> float | None:
    """Wall seconds from the end of the run's last load step to the run's end: raw ->
    decisions and checks (after `step_seconds`)."""
    ends = [e for k, (_, e) in STEP_WINDOWS.items() if STEP_STAGES.get(k) == "ingest"]
    if not ends or not RUN_WINDOW:
        return None
    return round(RUN_WINDOW[1] - max(ends), 1)


def dbt_timings() -> dict[str, dict[str, float] | list[dict]]:
    """The JSON's `dbt_models` and `dbt_tests`, slowest first, and `dbt_critical_path` (after
    `step_seconds`)."""
    return {
        **{
            name: {k: round(v, 2) for k, v in sorted(timings.items(), key=lambda kv: -kv[1])}
            for name, timings in (("dbt_models", MODEL_SECONDS), ("dbt_tests", TEST_SECONDS))
        },
        "dbt_critical_path": dbt_critical_path(),
    }


def dbt_critical_path() -> list[dict]:
    """The chain of dbt models and data tests that ended last (after `step_seconds`): from the
    node that finished last, back through what it waited for. A model waits for its parent
    models and their data tests (`dbt build`), a test for the models it reads; of those, the
    one that ended last before it began. Start and end in seconds from the run's start. What
    shortens the transform is on this chain; the rest ran beside it."""
    manifest = json.loads((ROOT / "dbt_project" / "target" / "manifest.json").read_text())
    parents: dict[str, set[str]] = {}  # node name -> parent model names
    test_parents: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        ups = {
            u.split(".")[-1]
            for u in node.get("depends_on", {}).get("nodes", [])
            if u.startswith("model.")
        }
        (test_parents if node["resource_type"] == "test" else parents)[node["name"]] = ups
    seconds = {**MODEL_SECONDS, **TEST_SECONDS}

    def window(name: str) -> tuple[float, float]:
        end = DBT_ENDS[name][0]
        return end - seconds[name], end

    def waited_for(name: str) -> list[str]:
        if ":" in name:  # a test: the models it reads
            ups = test_parents.get(name.split(":", 1)[1], set())
            return [k for k in MODEL_SECONDS if k.split("/")[-1] in ups]
        ups = parents.get(name.split("/")[-1], set())
        return [k for k, (_, asset) in DBT_ENDS.items() if asset.split("/")[-1] in ups]

    if not DBT_ENDS or not RUN_WINDOW:
        return []
    chain = [max(DBT_ENDS, key=lambda k: DBT_ENDS[k][0])]
    while True:
        start = window(chain[-1])[0]
        before = [k for k in waited_for(chain[-1]) if k not in chain and window(k)[1] <= start + 1]
        if not before:
            break
        chain.append(max(before, key=lambda k: window(k)[1]))
    origin = RUN_WINDOW[0]
    return [
        {
            "node": name,
            "start": round(window(name)[0] - origin, 1),
            "end": round(window(name)[1] - origin, 1),
            "seconds": round(seconds[name], 1),
        }
        for name in reversed(chain)
    ]


def print_slowest_dbt(result: dict) -> None:
    """The eight slowest dbt models and data tests of `result` (from `dbt_timings`), and the
    dbt critical path."""
    for label, key in (("models", "dbt_models"), ("data tests", "dbt_tests")):
        top = list(result[key].items())[:8]
        print(f"slowest dbt {label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in top))
    path = result.get("dbt_critical_path") or []
    print(
        "dbt critical path (s from the run's start): "
        + " -> ".join(f"{p['node']} {p['start']:.0f}-{p['end']:.0f}" for p in path)
    )


def _is_warm_dbt(cmdline: bytes) -> bool:
    return b"kernel.warm_dbt" in cmdline and b"--serve" in cmdline


class PeakSampler:
    """Peak resident memory (VmHWM) per role of the processes under the given roots, sampled
    every `interval` seconds from /proc (a process's high-water mark only grows, so a sample
    shortly before it exits holds its peak). Roles: each root's name, `dbt` for a descendant
    running dbt (also the dbts the warm server forks: they descend from it, not from the run),
    `pull processes` for the run's fork server and the pulls it forks
    (connectors/pull_process.py), and the embedded PostgreSQL of `home` (the postmaster and
    its backends; a backend's figure counts the shared buffers it touched)."""

    def __init__(self, roots: dict[str, int], home: Path, interval: float = 1.0) -> None:
        self.roots, self.home, self.interval = dict(roots), home, interval
        self.peaks_kib: dict[str, int] = {}
        self.rises: dict[str, list[tuple[float, int]]] = {}  # role -> (epoch s, new peak KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def add_root(self, role: str, pid: int) -> None:
        self.roots[role] = pid

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        parent: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:  # comm may hold spaces and parentheses: ppid is after the last ')'
                    stat = (entry / "stat").read_text()
                    parent[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        roots = {pid: role for role, pid in self.roots.items()}
        for pid in parent:  # the home's embedded server: the postmaster's -D is under it
            cmdline = _cmdline(pid)
            if self.home.as_posix().encode() in cmdline and cmdline.split(b"\0")[0].endswith(
                b"postgres"
            ):
                roots.setdefault(pid, "postgres")
        warm = {pid for pid in parent if _is_warm_dbt(_cmdline(pid))}
        for pid in warm:  # dbt forked by the warm server (kernel/warm_dbt.py) descends from it
            if parent[pid] not in warm:
                roots.setdefault(pid, "dbt (warm server)")
        for pid in parent:
            role = roots.get(pid) or self._descendant_role(pid, parent, roots)
            if role is None:
                continue
            try:
                status = (Path("/proc") / str(pid) / "status").read_text()
            except OSError:
                continue
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            if found and int(found.group(1)) > self.peaks_kib.get(role, 0):
                self.peaks_kib[role] = int(found.group(1))
                self.rises.setdefault(role, []).append((time.time(), int(found.group(1))))

    @staticmethod
    def _descendant_role(pid: int, parent: dict[int, int], roots: dict[int, str]) -> str | None:
        ancestor, hops = parent.get(pid), 0
        while ancestor and hops < 64:
            if ancestor in roots:
                if roots[ancestor] == "postgres":
                    return "postgres backend (largest)"
                if b"dbt" in _cmdline(pid):
                    return "dbt (largest)"
                if b"multiprocessing." in _cmdline(pid):  # forked by the run's fork server
                    return "pull processes (largest)"
                return f"{roots[ancestor]}'s other children (largest)"
            ancestor, hops = parent.get(ancestor), hops + 1
        return None

    def peaks_mib(self) -> dict[str, int]:
        return {role: round(kib / 1024) for role, kib in sorted(self.peaks_kib.items())}

    def largest_rises(self, role: str, count: int = 5) -> list[dict]:
        """The `count` largest rises of `role`'s peak between two samples (MiB), each with
        the steps of the run that were executing then (after `step_seconds`): which steps
        set a process's peak, when the run's steps execute in it."""
        rises, previous = [], 0
        for at, kib in self.rises.get(role, []):
            if previous:  # the first sample is the process's start, not a rise
                running = sorted(
                    key for key, (start, end) in STEP_WINDOWS.items()
                    if start - self.interval <= at <= end + self.interval
                )  # fmt: skip
                rises.append({
                    "mib": round((kib - previous) / 1024), "to_mib": round(kib / 1024),
                    "at": time.strftime("%H:%M:%S", time.gmtime(at)), "steps": running,
                })  # fmt: skip
            previous = kib
        return sorted(rises, key=lambda r: -r["mib"])[:count]


def print_peak_rises(role: str, rises: list[dict]) -> None:
    """The largest rises of a process's peak memory and the steps running at each."""
    print(f"largest rises of the {role}'s peak memory (UTC, MiB, steps running): " + "; ".join(
        f"{r['at']} +{r['mib']:,} to {r['to_mib']:,} ({', '.join(r['steps']) or 'no step'})"
        for r in rises
    ))  # fmt: skip


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def start_sandbox(cli: str, args, env: dict, log: Path, timeout: float) -> subprocess.Popen:
    """`orderpulse sandbox serve --full-world` in its own process group; returns once it has
    published the world (its "orders published" line), or raises with its output's tail."""
    cmd = [
        cli, "sandbox", "serve", "--full-world", "--orders", str(args.orders),
        "--days", str(args.days), "--seed", str(args.seed),
    ]  # fmt: skip
    print(f"starting {' '.join(cmd[1:])} (output in {log})", flush=True)
    return start_published(cmd, env, log, timeout)


def start_published(
    cmd: list[str], env: dict | None, log: Path, timeout: float
) -> subprocess.Popen:
    """A sandbox command in its own process group, its output in `log`; returns once it has
    published the world (its "orders published" line), or raises with its output's tail."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while "orders published" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_group(proc)
            raise RuntimeError(f"the sandbox did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc


def stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def print_stages(
    per_stage: dict[str, dict],
    total_label: str,
    total_seconds: float,
    total_rate: int | None,
    note: str = "",
) -> None:
    """The per-stage table (summed step seconds, orders/s, wall span) and its total line
    (then `note`)."""
    print()
    print(f"{'stage':<12}{'step s':>10}{'orders/s':>12}{'span s':>10}")
    for name, figures in per_stage.items():
        rate = f"{figures['orders_per_s']:,}" if figures["orders_per_s"] else "-"
        span = figures.get("span_seconds")
        shown = f"{span:>10,.1f}" if span is not None else f"{'-':>10}"
        print(f"{name:<12}{figures['seconds']:>10,.1f}{rate:>12}{shown}")
    print(f"{total_label:<12}{total_seconds:>10,.1f}{total_rate or 0:>12,}{note}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--sandbox",
        choices=("separate", "here"),
        default="separate",
        help="the sandbox in a process of its own (default) or in the demo's",
    )
    parser.add_argument("--home", type=Path, default=None, help="scratch ORDERPULSE_HOME")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="op-flow-")) / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORDERPULSE_HOME": str(home)}
    env.pop("ORDERPULSE_PG_URL", None)  # the scratch home's own embedded server
    log = home / "full_flow.log"
    cli = str(Path(sys.executable).parent / "orderpulse")
    cmd = [
        cli, "demo", "--orders", str(args.orders),
        "--days", str(args.days), "--seed", str(args.seed), "--yes",
    ]  # fmt: skip
    sandbox = None
    with PeakSampler({}, home) as sampler:
        if args.sandbox == "separate":
            subprocess.check_call(
                [cli, "prepare"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
            )  # an empty, prepared warehouse for the sandbox's ERP database and the run
            began_world = time.monotonic()
            sandbox = start_sandbox(cli, args, env, home / "sandbox.log", timeout=3 * 3600)
            sampler.add_root("sandbox", sandbox.pid)
            print(f"sandbox published its world in {time.monotonic() - began_world:,.0f} s")
            cmd += ["--sandbox-running"]
        print(f"running {' '.join(cmd[1:])} (output in {log})", flush=True)
        began = time.monotonic()
        try:
            with log.open("w") as out:
                demo = subprocess.Popen(
                    cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                )
                sampler.add_root("demo", demo.pid)
                code = demo.wait()
        finally:
            if sandbox is not None:
                stop_group(sandbox)
    total = time.monotonic() - began
    peaks = sampler.peaks_mib()
    reported = re.search(
        r"peak memory of this process by the run's end: ([\d,]+) MiB",
        " ".join(log.read_text().split()),
    )
    if reported:
        peaks["demo, by the run's end"] = int(reported.group(1).replace(",", ""))
    if code != 0:
        print(log.read_text()[-3000:])
        print(f"the demo exited {code}")
        try:  # what the steps that finished took: a failed 1 M run still tells where time went
            stages, steps, wall = step_seconds(home)
            done = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(steps.items()))
            print(f"steps finished before it stopped ({wall:,.0f} s into the run): {done}")
        except Exception as exc:  # no run recorded (it failed before starting one)
            print(f"no step timings: {exc}")
        print("peak memory (MiB): " + ", ".join(f"{k} {v:,}" for k, v in peaks.items()))
        return 1

    stages, steps, wall = step_seconds(home)
    spans = stage_spans()
    per_stage = {
        name: {
            "seconds": round(seconds, 1),
            "orders_per_s": round(args.orders / seconds) if seconds else None,
            "span_seconds": spans.get(name),
        }
        for name, seconds in stages.items()
    }
    after_ingest = after_ingest_seconds()
    slowest = sorted(steps.items(), key=lambda kv: kv[1], reverse=True)[:8]
    result = {
        "orders": args.orders,
        "days": args.days,
        "stages": per_stage,
        "run_seconds": round(wall, 1),
        "after_ingest_seconds": after_ingest,
        "run_orders_per_s": round(args.orders / wall) if wall else None,
        "demo_seconds": round(total, 1),
        "sandbox": args.sandbox,
        "peak_rss_mib": peaks,
        "slowest_steps": [{"label": k, "seconds": round(v, 1)} for k, v in slowest],
        "steps": {k: round(v, 2) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        **dbt_timings(),
        "demo_peak_rises": sampler.largest_rises("demo"),
    }
    print_stages(per_stage, "run", wall, result["run_orders_per_s"])
    if after_ingest is not None:
        print(
            f"raw -> decisions and checks (from the last load's end to the run's end): "
            f"{after_ingest:,.1f} s (target 300 s)"
        )
    print(f"demo process (world generation, run, summary): {total:,.1f} s")
    print("peak memory (MiB): " + ", ".join(f"{k} {v:,}" for k, v in peaks.items()))
    print("slowest steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in slowest))
    print_slowest_dbt(result)
    print_peak_rises("demo", result["demo_peak_rises"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    subprocess.call(
        [str(Path(sys.executable).parent / "orderpulse"), "db", "stop"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
