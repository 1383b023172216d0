"""The dbt project as Dagster sees it.

Importing this module runs nothing, except under `dagster dev` when the manifest is older than
a file of the project: then dagster-dbt's preparer parses it (what `prepare_if_dev` does, but
not again in every run worker: each one imports this module, and a `dbt parse` per run was
seconds of CPU on every live-mode run). Every other entry point (the CLI, the tests) calls
`prepare_manifest()` before it loads the definitions.
"""

from __future__ import annotations

import json
import os
import re
import sys
from functools import cache
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def put_venv_on_path() -> None:
    """dagster-dbt's preparer runs the `dbt` on PATH: make it this interpreter's venv's."""
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "")])


# what `dbt parse` reads; target/, logs/ and installed packages are its outputs
_PARSE_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "snapshots",
                 "tests", "analyses")  # fmt: skip


def manifest_is_current(project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """The manifest exists, the installed dbt-core wrote it and it is newer than every file
    `dbt parse` reads."""
    manifest = project_dir / "target" / "manifest.json"
    if not manifest.exists():
        return False
    with manifest.open("rb") as f:  # the metadata comes first: no need to read 3 MB
        written_by = re.search(rb'"dbt_version":\s*"([^"]+)"', f.read(4096))
    if not written_by or written_by.group(1).decode() != installed_version("dbt-core"):
        return False
    parsed = manifest.stat().st_mtime
    for name in _PARSE_INPUTS:
        path = project_dir / name
        files = path.rglob("*") if path.is_dir() else [path] if path.exists() else []
        if any(f.stat().st_mtime > parsed for f in files):
            return False
    return True


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
if dbt_project.preparer.using_dagster_dev() and not manifest_is_current():
    put_venv_on_path()
    dbt_project.prepare_if_dev()


class ManifestMissing(RuntimeError):
    """The dbt manifest is missing; the message says how to make it."""


def prepare_manifest() -> Path:
    """`dbt parse` through dagster-dbt's preparer, unless the manifest is current.

    A stale manifest makes runs fail with KeyError on nodes it lacks, so every entry point
    that runs dbt assets outside `dagster dev` calls this first. A parse with nothing changed
    still cost 9-19 s of a 2-core host (dbt's start and a 3 MB manifest written again) in
    every `orderpulse` command that runs the pipeline."""
    from filelock import FileLock

    put_venv_on_path()
    target = Path(dbt_project.manifest_path).parent
    target.mkdir(parents=True, exist_ok=True)
    # two processes parsing into one target folder would tear each other's manifest
    with FileLock(target / ".prepare.lock"):
        if not manifest_is_current():
            dbt_project.preparer.prepare(dbt_project)
    load_manifest.cache_clear()
    return Path(dbt_project.manifest_path)


@cache
def load_manifest() -> dict[str, Any]:
    """The parsed manifest, read once per process."""
    path = Path(dbt_project.manifest_path)
    if not path.exists():
        raise ManifestMissing(
            f"{path} does not exist: run `orderpulse prepare` (or start `orderpulse up` / "
            "`dagster dev`, which prepare it) before loading the Dagster definitions"
        )
    return json.loads(path.read_text())
