"""Webhook receiver under load: signed push events over loopback, as fast as it takes them.

The real receiver (`connectors.webhook_app`, uvicorn, its own process) stores into a real
PostgreSQL (a scratch embedded server, or the one named by ORDERPULSE_BENCH_PG_URL, fresh
database). A closed-loop client (`--concurrency` threads, one request in flight each) sends
`--events` signed, distinct events across the six marketplaces (built by the sandbox's
gateways: each platform's format and signature), interleaved with attacks: forged (wrong
secret), stale (sent an hour ago), oversize (over the 1 MiB limit, declared; and one 64 MiB
streamed body) and malformed (signed garbage); then replays of accepted events. The run is
bounded by `--max-seconds`.

Checks: every accepted event is stored exactly once (none lost, nothing refused stored), every
attack is refused with its status. Figures: the sustained rate of accepted events, beside a
reference measured in the same run with the same client and messages: a bare endpoint (same
uvicorn, same process setup) that only answers 200; and the receiver's peak memory before and
after the oversize bodies.

    .venv/bin/python bench/webhook_load.py                # 20,000 events
    .venv/bin/python bench/webhook_load.py --quick        # 2,000 events: does it work?
      --concurrency 8  --max-seconds 300  --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMIT = 1024 * 1024
SEED = 7


@dataclass(frozen=True)
class Shot:
    """One request to send and the answer it must get."""

    kind: str  # accepted | forged | stale | oversize | malformed | replay
    channel: str
    content: bytes
    headers: dict[str, str]
    message_id: str | None
    expect: int


# -- the two servers (run in a child process: `--serve receiver|bare`) ---------------------------


def serve(kind: str, port: int, db_url: str, creds_file: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if kind == "receiver":
        from connectors.webhook_app import create_webhook_app

        creds = json.loads(creds_file.read_text())
        app = create_webhook_app(db_url, creds, max_body=LIMIT)
    else:

        async def ok(request):  # noqa: ANN001, ANN202 - the floor: read the body, answer 200
            await request.body()
            return JSONResponse({"code": 0, "msg": "success"})

        app = Starlette(routes=[Route("/webhooks/{channel}", ok, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kind: str, db_url: str, creds_file: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--db", db_url,
         "--creds", str(creds_file)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{base}/webhooks/none", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def peak_rss_mib(proc: subprocess.Popen) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the workload --------------------------------------------------------------------------------


def build_shots(events: int, creds: dict[str, dict[str, str]]) -> tuple[list[Shot], list[Shot]]:
    """(main load: accepted events interleaved with attacks, replays of accepted ones)."""
    from sandbox.gateways import GATEWAYS
    from sandbox.gateways.common import CHANGE_KINDS
    from sandbox.gateways.samples import sample_orders
    from sandbox.push import latest_state

    rng = random.Random(SEED)
    now = datetime.now(UTC)
    channels = list(GATEWAYS)
    states = {
        c: [latest_state(o, now) for o in sample_orders(c, 60, end=now - timedelta(minutes=1))]
        for c in channels
    }

    def signed(channel: str, i: int, secret_suffix: str = "", sent: datetime = now) -> Shot:
        state = states[channel][i % len(states[channel])]
        msg_id = f"bench-{channel}-{i}"
        c = {k: (v + secret_suffix if "secret" in k else v) for k, v in creds[channel].items()}
        kind = CHANGE_KINDS[i % len(CHANGE_KINDS)]
        content, headers = GATEWAYS[channel].build_push(state, kind, msg_id, c, sent)
        return Shot("accepted", channel, content, headers, msg_id, 200)

    accepted = [signed(channels[i % len(channels)], i) for i in range(events)]
    attacks: list[Shot] = []
    share = max(1, events // 50)  # 2 % of each kind
    for j in range(share):
        channel = channels[j % len(channels)]
        forged = signed(channel, events + j, secret_suffix="x")
        attacks.append(Shot("forged", channel, forged.content, forged.headers, None, 401))
        stale = signed(channel, 2 * events + j, sent=now - timedelta(hours=1))
        attacks.append(Shot("stale", channel, stale.content, stale.headers, None, 403))
        garbage = b"[{" + bytes(rng.randrange(256) for _ in range(64))
        attacks.append(Shot("malformed", "douyin", *_douyin_signed(garbage, creds), None, 400))
    for j in range(max(1, share // 20)):
        big = signed(channels[j % len(channels)], 3 * events + j)
        padded = big.content + b" " * (LIMIT + 1 - len(big.content))
        attacks.append(Shot("oversize", big.channel, padded, big.headers, None, 413))
    shots = accepted + attacks
    rng.shuffle(shots)
    replays = [
        Shot("replay", s.channel, s.content, s.headers, s.message_id, 403)
        for s in rng.sample(accepted, max(1, events // 40))
    ]
    return shots, replays


def _douyin_signed(body: bytes, creds: dict[str, dict[str, str]]) -> tuple[bytes, dict[str, str]]:
    import hashlib

    c = creds["douyin"]
    sign = hashlib.md5(c["app_key"].encode() + body + c["app_secret"].encode()).hexdigest()
    return body, {"content-type": "application/json", "event-sign": sign}


def fire(
    base: str, shots: list[Shot], concurrency: int, deadline: float
) -> tuple[list[tuple[Shot, int]], float]:
    """Send every shot from `concurrency` threads (one keep-alive connection each: httpx's
    async pool was the bottleneck here); (shot, status) pairs and the wall time."""
    queue = iter(shots)
    lock = threading.Lock()

    def worker() -> list[tuple[Shot, int]]:
        out = []
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    shot = next(queue, None)
                if shot is None:
                    break
                try:
                    status = client.post(
                        f"{base}/webhooks/{shot.channel}", content=shot.content,
                        headers=shot.headers,
                    ).status_code  # fmt: skip
                except httpx.TransportError:
                    status = -1  # the server closed on an oversize body: a refusal too
                out.append((shot, status))
        return out

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = [pool.submit(worker) for _ in range(concurrency)]
        results = [pair for part in parts for pair in part.result()]
    return results, time.perf_counter() - began


def streamed_oversize(base: str, mib: int = 64) -> int:
    """A chunked body of `mib` MiB (no Content-Length): refused once past the limit."""

    def body():  # noqa: ANN202
        chunk = b"x" * 65536
        for _ in range(mib * 16):
            yield chunk

    try:
        return httpx.post(f"{base}/webhooks/douyin", content=body(), timeout=30).status_code
    except httpx.TransportError:
        return -1


# -- main ------------------------------------------------------------------------------------------


def database(home: Path) -> tuple[str, object | None]:
    """A fresh database: on ORDERPULSE_BENCH_PG_URL's server, or a scratch embedded one."""
    from kernel.database import EmbeddedServer, PgConn

    external = os.environ.get("ORDERPULSE_BENCH_PG_URL")
    server = None
    if external:
        admin = PgConn.from_url(external)
    else:
        server = EmbeddedServer(home / "pgdata")
        server.start()
        admin = server.conn("postgres")
    name = f"bench_webhook_{int(time.time())}"
    with psycopg.connect(admin.url(dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return PgConn(admin.host, admin.port, admin.user, admin.password, name).url(), server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 events")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--serve", choices=("receiver", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--creds", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.creds)
        return 0
    events = 2_000 if args.quick else args.events

    from sandbox.gateways import GATEWAYS

    home = args.home or Path(tempfile.mkdtemp(prefix="op_webhook_"))
    home.mkdir(parents=True, exist_ok=True)
    creds = {c: GATEWAYS[c].new_credentials() for c in GATEWAYS}
    creds_file = home / "creds.json"
    creds_file.write_text(json.dumps(creds))
    creds_file.chmod(0o600)
    db_url, server = database(home)
    receiver = bare = None
    try:
        shots, replays = build_shots(events, creds)
        accepted_only = [s for s in shots if s.kind == "accepted"]

        bare, bare_base = start_server("bare", db_url, creds_file)
        deadline = time.monotonic() + args.max_seconds
        bare_results, bare_s = fire(bare_base, accepted_only, args.concurrency, deadline)

        receiver, base = start_server("receiver", db_url, creds_file)
        rss_start = peak_rss_mib(receiver)
        deadline = time.monotonic() + args.max_seconds
        results, load_s = fire(base, shots, args.concurrency, deadline)
        rss_after_load = peak_rss_mib(receiver)
        streamed = streamed_oversize(base)
        rss_after_oversize = peak_rss_mib(receiver)
        replay_results, _ = fire(base, replays, args.concurrency, deadline + 60)
        results += replay_results + [(Shot("oversize", "douyin", b"", {}, None, 413), streamed)]
    finally:
        for proc in (receiver, bare):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)

    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("select message_id from raw.webhook_events")}
        rows = conn.execute("select count(*) from raw.webhook_events").fetchone()[0]
    if server is not None:
        server.stop()

    ok_ids = {s.message_id for s, status in results if s.kind == "accepted" and status == 200}
    sent_accepted = sum(1 for s, _ in results if s.kind == "accepted")
    by_kind: dict[str, Counter] = {}
    for shot, status in results:
        by_kind.setdefault(shot.kind, Counter())[status] += 1
    allowed = {
        "forged": {401},
        "stale": {403},
        "malformed": {400},
        "replay": {403},
        "oversize": {413, -1},
    }  # -1: the server closed the connection on it
    wrong = {kind: dict(c) for kind, c in by_kind.items()
             if kind in allowed and set(c) - allowed[kind]}  # fmt: skip
    lost = ok_ids - stored
    extra = stored - ok_ids
    rate = len(ok_ids) / load_s if load_s else 0.0
    bare_ok = sum(1 for _, status in bare_results if status == 200)
    bare_rate = bare_ok / bare_s if bare_s else 0.0

    print(f"events: {events} signed ({sent_accepted} sent within the bound), "
          f"concurrency {args.concurrency}, body limit {LIMIT} B")  # fmt: skip
    for kind in ("accepted", "forged", "stale", "malformed", "oversize", "replay"):
        print(f"  {kind:<10} answers {dict(sorted(by_kind.get(kind, Counter()).items()))}")
    print(f"stored: {rows} rows; accepted answered 200: {len(ok_ids)}; lost: {len(lost)}; "
          f"stored but not accepted: {len(extra)}")  # fmt: skip
    print(f"receiver: {rate:,.0f} accepted events/s sustained ({len(ok_ids)} in {load_s:.1f} s, "
          f"attacks interleaved)")  # fmt: skip
    print(f"reference, bare 200 endpoint: {bare_rate:,.0f} requests/s "
          f"({bare_ok} in {bare_s:.1f} s); receiver at {rate / bare_rate:.0%} of it"
          if bare_rate else "reference: none")  # fmt: skip
    print(
        f"receiver peak RSS: {rss_start:.0f} MiB at start, {rss_after_load:.0f} after the "
        f"load, {rss_after_oversize:.0f} after a 64 MiB streamed body (answered {streamed})"
    )
    passed = not lost and not extra and not wrong and len(ok_ids) == sent_accepted == events
    if wrong:
        print(f"attacks not refused as expected: {wrong}")
    print("PASS" if passed else "FAIL")
    if args.out:
        args.out.write_text(json.dumps({
            "events": events, "concurrency": args.concurrency,
            "accepted_per_s": rate, "bare_per_s": bare_rate,
            "ratio_to_bare": rate / bare_rate if bare_rate else None,
            "lost": len(lost), "stored_not_accepted": len(extra),
            "answers": {k: dict(c) for k, c in by_kind.items()},
            "peak_rss_mib": {"start": rss_start, "after_load": rss_after_load,
                             "after_oversize": rss_after_oversize},
            "passed": passed,
        }, indent=2, default=str))  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
