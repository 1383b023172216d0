"""One channel's pull (`connectors.ingest`) in a process of its own.

A pull spends its CPU in Python: signing, HTTP, JSON, the raw rows. In the run's process it
shares one interpreter lock with everything else the run does at the same time (the other
steps' threads, Great Expectations, dbt's event stream), and two pulls side by side there
were no faster than one after the other. In a process of its own each pull has its own lock:
on the 2-core host two pulls at once loaded 1,117-1,133 orders/s against 678-728 one after the
other in one process (`bench/pull_processes.py`; `bench/README.md`).

The processes come from a fork server (`multiprocessing`'s "forkserver"): started once per
run process with the connectors already imported, it forks each pull in milliseconds, from a
clean single-threaded process (forking the run's threaded process itself is unsafe). A pull
process is tied to the fork server, which ends with the run's process, so a killed run leaves
no pull loading behind its retry. The parent reads the pull's progress and log records as
they come and gets its report, or its error, at the end; if the parent is interrupted (a
cancelled run) the pull process is terminated: its open transaction rolls back and the next
pull resumes from the committed cursor, as after any crash. The parent waits for the pull's
messages a fraction of a second at a time, so that an interrupt raised in its thread is seen
while the pull is in the middle of a long window.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.ingest import IngestProgress, IngestReport

# what the fork server imports once, so that each pull starts without importing anything
_PRELOAD = ["connectors.pull_process", "connectors.ingest", "connectors.marketplace"]
_CONTEXT_LOCK = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None
# how long a terminated pull gets to exit before it is killed
_TERMINATE_SECONDS = 5.0
# how long the parent waits for a message at a time (an interrupt is seen between waits)
_WAIT_SECONDS = 0.2


class PullProcessError(RuntimeError):
    """A pull failed in its process with an error that could not be sent back as it is; the
    message names the error's type and text, the note its traceback in the pull's process."""


@dataclass(frozen=True)
class PullJob:
    """What a pull process needs: everything travels by value (the environment too, so that
    credentials set in the environment after the fork server started are seen)."""

    channel: str
    warehouse_url: str = field(repr=False)
    sandbox_file: Path
    run_id: str
    lag: timedelta = timedelta(0)
    backfill_days: int = 3  # first-run depth of an incremental pull
    days: int | None = None  # a backfill of this many days, whatever the cursor says
    page_size: int | None = None
    settle: timedelta | None = None  # how far behind the platform's clock windows end
    http_timeout: float = 10.0
    log_level: int = logging.WARNING
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)


def _pull_context() -> multiprocessing.context.BaseContext:
    global _context
    with _CONTEXT_LOCK:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            _context = context
        return _context


def pull_in_process(
    job: PullJob, on_progress: Callable[[IngestProgress], None] | None = None
) -> IngestReport:
    """Run `job` in a process of its own; call `on_progress` with each `IngestProgress` and
    re-log the pull's log records here as they arrive. Returns the `IngestReport`; raises the
    pull's error (or `PullProcessError` naming it)."""
    context = _pull_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main, args=(job, sender), name=f"pull:{job.channel}", daemon=False
    )
    process.start()
    sender.close()  # the child holds the only writing end: EOF when it exits
    try:
        while True:
            if not receiver.poll(_WAIT_SECONDS):  # readable at a message and at the end
                continue
            try:
                kind, payload = receiver.recv()
            except EOFError:
                process.join()
                raise PullProcessError(
                    f"{job.channel}: the pull process ended without an answer "
                    f"(exit code {process.exitcode})"
                ) from None
            if kind == "progress":
                if on_progress is not None:
                    on_progress(payload)
            elif kind == "log":
                _relog(*payload)
            elif kind == "done":
                process.join()
                return payload
            elif kind == "failed":
                process.join()
                raise _error(job.channel, *payload)
    finally:
        receiver.close()
        if process.is_alive():  # interrupted here: stop the pull too
            process.terminate()
            process.join(_TERMINATE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()


def _relog(name: str, level: int, message: str) -> None:
    logger = logging.getLogger(name)
    if logger.isEnabledFor(level):
        logger.log(level, "%s", message)


def _error(channel: str, pickled: bytes | None, described: str, trace: str) -> BaseException:
    err: BaseException | None = None
    if pickled is not None:
        try:
            err = pickle.loads(pickled)
        except Exception:  # noqa: BLE001 (an error that does not rebuild is described instead)
            err = None
    if err is None:
        err = PullProcessError(f"{channel}: {described}")
    err.add_note(f"in the pull process:\n{trace}")
    return err


class _PipeHandler(logging.Handler):
    """Sends each record, formatted here, to the parent (a LogRecord's args may not pickle)."""

    def __init__(self, sender: Connection, lock: threading.Lock):
        super().__init__()
        self._sender, self._lock = sender, lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            with self._lock:
                self._sender.send(("log", (record.name, record.levelno, message)))
        except Exception:  # noqa: BLE001 (logging must never break the pull)
            self.handleError(record)


def _child_main(job: PullJob, sender: Connection) -> None:
    from kernel.tied_child import tie_to_parent

    tie_to_parent()  # the fork server ends with the run's process; so does this pull
    os.environ.clear()
    os.environ.update(job.environ)
    lock = threading.Lock()
    root = logging.getLogger()
    root.handlers[:] = [_PipeHandler(sender, lock)]
    root.setLevel(job.log_level)

    def send(kind: str, payload: object) -> None:
        with lock:
            sender.send((kind, payload))

    try:
        send("done", _pull(job, lambda progress: send("progress", progress)))
    except BaseException as err:  # noqa: BLE001 (every failure goes back to the parent)
        try:
            pickled = pickle.dumps(err)
            pickle.loads(pickled)  # it must also rebuild on the other side
        except Exception:  # noqa: BLE001
            pickled = None
        send("failed", (pickled, f"{type(err).__name__}: {err}", traceback.format_exc()))
    finally:
        sender.close()


def _pull(job: PullJob, on_progress: Callable):
    import psycopg

    from connectors.ingest import backfill, ingest_channel
    from connectors.marketplace import open_client

    with (
        open_client(
            job.channel, job.sandbox_file, timeout=job.http_timeout, page_size=job.page_size
        ) as client,
        psycopg.connect(job.warehouse_url, application_name="orderpulse") as conn,
    ):
        if job.settle is not None:
            client.settle = job.settle
        if job.days:
            return backfill(conn, client, days=job.days, run_id=job.run_id, on_progress=on_progress)
        return ingest_channel(
            conn,
            client,
            lag=job.lag,
            backfill_days=job.backfill_days,
            run_id=job.run_id,
            on_progress=on_progress,
        )
