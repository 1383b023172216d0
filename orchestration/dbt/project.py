"""The dbt project as Dagster sees it, with a manifest that is always current."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.resources import dbt_executable

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
_WATCHED = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
_WATCHED_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml")


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for name in _WATCHED_FILES:
        path = project_dir / name
        if path.exists():
            newest = max(newest, path.stat().st_mtime)
    for folder in _WATCHED:
        root = project_dir / folder
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file():
                    newest = max(newest, path.stat().st_mtime)
    return newest


def manifest_is_stale(project: DbtProject) -> bool:
    manifest = Path(project.manifest_path)
    return not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(
        Path(project.project_dir)
    )


def ensure_manifest(project: DbtProject) -> Path:
    """Run `dbt parse` when the manifest is missing or older than any model, macro or test.

    A stale manifest makes runs fail with KeyError on nodes it lacks, so every entry point
    (CLI, tests, `dagster dev`, the webserver) goes through here when it loads the definitions.
    """
    manifest = Path(project.manifest_path)
    if manifest_is_stale(project):
        env = {
            **os.environ,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        result = subprocess.run(
            [
                dbt_executable(),
                "parse",
                "--project-dir",
                str(project.project_dir),
                "--profiles-dir",
                str(project.profiles_dir),
                "--target-path",
                str(Path(project.target_path)),
                "--quiet",
            ],
            cwd=project.project_dir,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"dbt parse failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
            )
    return manifest


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
