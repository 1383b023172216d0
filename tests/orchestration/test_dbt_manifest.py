"""Every entry point prepares the dbt project (and under `dagster dev` every run worker
imports it): it parses only when the manifest is older than a file `dbt parse` reads or another
dbt-core wrote it."""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import version
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


def _age_all_but(manifest: Path, project: Path) -> None:
    """Every file of the project a minute older than the manifest."""
    for path in project.rglob("*"):
        if path != manifest:
            _age(path, 60)


def test_a_manifest_newer_than_every_project_file_is_current(tmp_path: Path):
    project = _project_copy(tmp_path)
    assert not manifest_is_current(project)  # none yet
    manifest = project / "target" / "manifest.json"
    written = {"metadata": {"dbt_schema_version": "v12", "dbt_version": version("dbt-core")}}
    manifest.write_text(json.dumps(written))
    _age_all_but(manifest, project)
    assert manifest_is_current(project)

    # a model edited after the parse makes it stale; files dbt writes do not
    (project / "logs").mkdir()
    (project / "logs" / "dbt.log").write_text("written by dbt")
    (project / "target" / "run_results.json").write_text("{}")
    assert manifest_is_current(project)
    model = next((project / "models").rglob("*.sql"))
    model.write_text(model.read_text() + "\n")
    assert not manifest_is_current(project)


def test_a_manifest_another_dbt_core_wrote_is_not_current(tmp_path: Path):
    project = _project_copy(tmp_path)
    manifest = project / "target" / "manifest.json"
    manifest.write_text(json.dumps({"metadata": {"dbt_version": "1.5.0"}}))
    _age_all_but(manifest, project)
    assert not manifest_is_current(project)
    manifest.write_text(json.dumps({"metadata": {"dbt_version": version("dbt-core")}}))
    assert manifest_is_current(project)
