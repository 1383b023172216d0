"""Under `dagster dev` every run worker imports the dbt project: it parses only when the
manifest is older than a file `dbt parse` reads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestration.dbt.project import DBT_PROJECT_DIR, manifest_is_current


def _project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    (copy / "target").mkdir()
    return copy


def _age(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


def test_a_manifest_newer_than_every_project_file_is_current(tmp_path: Path):
    project = _project_copy(tmp_path)
    assert not manifest_is_current(project)  # none yet
    manifest = project / "target" / "manifest.json"
    manifest.write_text("{}")
    for path in project.rglob("*"):
        if path != manifest:
            _age(path, 60)
    assert manifest_is_current(project)

    # a model edited after the parse makes it stale; files dbt writes do not
    (project / "logs").mkdir()
    (project / "logs" / "dbt.log").write_text("written by dbt")
    (project / "target" / "run_results.json").write_text("{}")
    assert manifest_is_current(project)
    model = next((project / "models").rglob("*.sql"))
    model.write_text(model.read_text() + "\n")
    assert not manifest_is_current(project)
