"""Run a command that dies with the process that started it: `orderpulse-dbt` is dbt so tied.

dagster-dbt starts `dbt` as a child of the run's step process. When that process is killed
(SIGKILL, the OOM killer, a crashed run worker) an ordinary child lives on: the orphaned dbt
finishes its build outside the one-dbt-at-a-time pool while Dagster's run retry starts another
one on the same incremental models. Linux sends a tied child SIGTERM as soon as its parent
dies (`PR_SET_PDEATHSIG`, kept across `exec`); PostgreSQL then rolls back the transaction of
the model being written, exactly as after any dropped connection.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1


def tie_to_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux only; False
    elsewhere). Exits at once if the parent is already gone (the race before the call)."""
    parent = os.getppid()
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent or parent == 1:
        os._exit(128 + sig)
    return True


def exec_tied(argv: Sequence[str]) -> None:
    """Replace this process with `argv`, tied to this process's parent."""
    tie_to_parent()
    os.execv(argv[0], list(argv))


def main() -> None:
    """`orderpulse-dbt ARGS`: this venv's `dbt ARGS`, ended when its caller dies; forked warm
    by kernel/warm_dbt.py's server when it can be, else started the ordinary way."""
    from kernel import warm_dbt

    if warm_dbt.enabled():
        tie_to_parent()
        try:
            code = warm_dbt.run(sys.argv[1:])
        except warm_dbt.NotServed:
            pass
        else:
            if code < 0:  # killed by a signal: so is this process, as dbt's caller expects
                signal.signal(-code, signal.SIG_DFL)
                os.kill(os.getpid(), -code)
            sys.exit(code)
    exec_tied([str(warm_dbt.dbt_path()), *sys.argv[1:]])
