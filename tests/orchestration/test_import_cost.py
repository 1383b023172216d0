"""Importing the definitions is cheap and side-effect free: OrderPulse's code starts no
subprocess (no `dbt parse`), reads the dbt manifest once and every config file at most once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: counts file reads and forbids process creation while the
# definitions are imported.
PROBE = r"""
import builtins, collections, io, json, os, subprocess, sys

# third-party import costs are not ours (Dagster's vendored croniter runs `file` once)
import dagster, dagster_dbt  # noqa: E401,F401

reads = collections.Counter()
spawned = []

def _watch(path):
    name = os.path.abspath(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else None
    if name and (name.endswith((".yaml", ".yml")) or name.endswith("manifest.json")):
        reads[name] += 1

_open = builtins.open
def open_(file, *args, **kwargs):
    _watch(file)
    return _open(file, *args, **kwargs)
builtins.open = open_
io.open = open_
# (pathlib's read_text/read_bytes go through io.open)

class Refused(Exception):
    pass

def refuse(*args, **kwargs):
    spawned.append(repr([a for a in args if isinstance(a, (str, list, tuple))])[:200])
    raise Refused("a subprocess was started while importing the definitions")

subprocess.Popen.__init__ = refuse
os.fork = refuse
os.posix_spawn = refuse
os.system = refuse

import orchestration.definitions  # noqa: E402

print(json.dumps({"reads": reads, "spawned": spawned}))
"""


def test_importing_the_definitions_starts_no_subprocess_and_reads_each_file_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_IS_DEV_CLI"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["spawned"] == []
    reads = report["reads"]
    manifest = [n for n in reads if n.endswith("manifest.json")]
    assert len(manifest) == 1 and reads[manifest[0]] == 1, reads
    ours = {n: c for n, c in reads.items() if n.startswith(str(ROOT / "config"))}
    assert str(ROOT / "config" / "channels.yaml") in ours
    assert all(count == 1 for count in ours.values()), ours
