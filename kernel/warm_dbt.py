"""dbt started warm: `orderpulse-dbt` asks a server that has imported dbt once to fork a dbt
for it, instead of starting a Python that imports dbt again.

A dbt process spends ~1.5 s of CPU importing dbt, its adapter and their libraries before it
reads the project, more on a busy 2-core host. Every dbt step pays it: three steps one after
another in each incremental cycle, two in each live decision pass. Here a server per venv
(`serve`) imports them once and waits on a Unix socket; for each request it forks a handler,
which forks the dbt: a copy of a process that has imported dbt and done nothing else, so the
dbt behaves as a fresh one (its own argv, working directory, environment, stdin/stdout/stderr
passed as file descriptors) without the imports.

- The caller (`run`) gets dbt's exit status, and forwards SIGINT/SIGTERM to the dbt (dagster-dbt
  interrupts dbt with SIGINT). When the caller dies its socket closes and the handler ends the
  dbt (SIGTERM); the dbt dies with its handler (kernel/tied_child.py).
- Whatever goes wrong before the dbt is forked (no server, a stale socket, a server that does
  not start), the caller runs dbt the ordinary way: never a lost build, only a cold start.
- The server leaves after `IDLE_SECONDS` without a request (`ORDERPULSE_DBT_WARM_IDLE`). Its
  socket is named after the venv's interpreter and the installed dbt (a new dbt gets a new
  server), and is the user's alone (0600), as running dbt is.
- `ORDERPULSE_DBT_WARM=0` turns it off (every dbt starts cold).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

IDLE_SECONDS = 900.0
IDLE_ENV = "ORDERPULSE_DBT_WARM_IDLE"  # seconds; the test suite's servers leave sooner
START_SECONDS = 60.0  # a server importing dbt on a busy host
ANSWER_SECONDS = 30.0  # from a request to the forked dbt's pid
WARM_ENV = "ORDERPULSE_DBT_WARM"
# what every dbt run imports: dbt's CLI and tasks, the Postgres adapter and its driver
PRELOAD = (
    "dbt.cli.main",
    "dbt.task.build",
    "dbt.task.run",
    "dbt.task.test",
    "dbt.task.seed",
    "dbt.task.list",
    "dbt.parser.manifest",
    "dbt.adapters.postgres",
    "dbt.adapters.postgres.impl",
    "psycopg2",
    "agate",
)
_HEADER = struct.Struct("!I")


class NotServed(Exception):
    """The warm path is not available; run dbt the ordinary way."""


def dbt_path() -> Path:
    return Path(sys.executable).with_name("dbt")


def socket_path() -> Path:
    """One server per venv and dbt install: the interpreter, the dbt script's and this file's
    times (an upgrade rewrites them)."""
    stamps = [sys.executable]
    for path in (dbt_path(), Path(__file__)):
        with contextlib.suppress(OSError):
            stamps.append(f"{path}:{path.stat().st_mtime_ns}")
    key = hashlib.sha1("|".join(stamps).encode()).hexdigest()[:12]
    # short: a Unix socket's path has at most 107 bytes
    return Path(tempfile.gettempdir()) / f"orderpulse-dbt-{os.getuid()}-{key}.sock"


def enabled() -> bool:
    return os.environ.get(WARM_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


# -- the caller ----------------------------------------------------------------------------------
def run(args: Sequence[str]) -> int:
    """`dbt ARGS` forked by the warm server; its exit code (-N: killed by signal N). Raises
    NotServed when no dbt was started."""
    conn = _connect_or_start(socket_path())
    with conn:
        request = json.dumps(
            {"args": list(args), "cwd": os.getcwd(), "env": dict(os.environ)}
        ).encode()
        try:
            socket.send_fds(conn, [_HEADER.pack(len(request))], _standard_fds())
            conn.sendall(request)
            conn.settimeout(ANSWER_SECONDS)  # a server that hangs is no server
            reader = conn.makefile("rb")
            started = json.loads(reader.readline() or b"{}")
            conn.settimeout(None)
        except (OSError, ValueError) as exc:
            raise NotServed(f"the warm dbt server did not answer ({exc})") from None
        if "pid" not in started:
            raise NotServed("the warm dbt server did not start dbt")
        pid = int(started["pid"])

        def forward(signum: int, _frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        line = reader.readline()  # a forwarded signal interrupts it, then it reads on
        if not line:  # the handler died: its dbt died with it (tied)
            return -signal.SIGKILL
        return int(json.loads(line)["exit"])


def _standard_fds() -> list[int]:
    """This process's stdin, stdout and stderr; /dev/null for one that is closed."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def _connect(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


def _connect_or_start(path: Path) -> socket.socket:
    try:
        return _connect(path)
    except OSError:
        pass
    # one caller starts the server; the others wait for it
    from filelock import FileLock

    with FileLock(f"{path}.lock"):
        try:
            return _connect(path)
        except OSError:
            pass
        server = subprocess.Popen(
            [sys.executable, "-m", "kernel.warm_dbt", "--serve", str(path), "--idle", _idle()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives this caller, not tied to its terminal
            cwd="/",
            # imports read no caller's settings: each dbt gets its caller's environment
            env={
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")},
                "PYTHONUTF8": "1",
            },
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise NotServed(f"the warm dbt server exited with {server.returncode}")
            try:
                return _connect(path)
            except OSError:
                time.sleep(0.05)
        raise NotServed("the warm dbt server did not start in time")


def _idle() -> str:
    try:
        return str(max(1.0, float(os.environ.get(IDLE_ENV, IDLE_SECONDS))))
    except ValueError:
        return str(IDLE_SECONDS)


# -- the server ----------------------------------------------------------------------------------
def serve(path: Path, idle: float = IDLE_SECONDS) -> None:
    """Import dbt, then fork a handler per request until `idle` seconds pass without one."""
    import importlib

    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    os.umask(0o077)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead server's socket (the caller holds the start lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                break
            if os.fork() == 0:  # the handler: never back into this loop
                code = 1
                try:
                    listener.close()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    code = _handle(conn)
                finally:
                    os._exit(code)
            conn.close()
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _handle(conn: socket.socket) -> int:
    """In a handler: read the request, fork the dbt, report its pid and then its exit."""
    conn.settimeout(30)
    try:
        header, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
        (size,) = _HEADER.unpack(header)
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                return 1
            body += chunk
        request = json.loads(body)
    except (OSError, ValueError, struct.error):
        return 1
    conn.settimeout(None)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_dbt(request, fds)  # never returns
    for fd in fds:  # the dbt holds the caller's pipes now; EOF reaches the caller when it exits
        os.close(fd)
    try:
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    except OSError:  # the caller gave up waiting (and runs dbt itself): this one stops
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    code = _wait(pid, conn)
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    return 0


def _wait(pid: int, conn: socket.socket) -> int:
    """The dbt's exit code; ends the dbt (SIGTERM) when the caller goes away first."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: look every 0.1 s
        pidfd = None
    watching: list = [conn] if pidfd is None else [conn, pidfd]
    try:
        while True:
            ready, _, _ = select.select(watching, [], [], 0.1 if pidfd is None else None)
            if pidfd is None or pidfd in ready:
                done, status = os.waitpid(pid, 0 if pidfd is not None else os.WNOHANG)
                if done:
                    return os.waitstatus_to_exitcode(status)
            if conn in ready and not _recv_or_eof(conn):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                watching.remove(conn)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _recv_or_eof(conn: socket.socket) -> bytes:
    try:
        return conn.recv(64)
    except OSError:
        return b""


def _run_dbt(request: dict, fds: list[int]) -> None:
    """In the forked dbt: become the caller's dbt and run it; exits the process."""
    from kernel.tied_child import tie_to_parent

    code = 1
    try:
        tie_to_parent()  # dies with its handler
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        args = [str(a) for a in request["args"]]
        sys.argv = [str(dbt_path()), *args]
        from dbt.cli.main import cli

        try:
            cli.main(args=args, prog_name="dbt")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the caller's stderr, then exit 1
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kernel.warm_dbt", description=__doc__)
    parser.add_argument("--serve", type=Path, required=True, metavar="SOCKET")
    parser.add_argument("--idle", type=float, default=IDLE_SECONDS, metavar="SECONDS")
    args = parser.parse_args(argv)
    serve(args.serve, args.idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
