"""The package rules of the README's architecture section hold (import-linter, contracts in
pyproject.toml): only orchestration imports Dagster, the sandbox and the connectors never
import each other, nothing imports the CLI, the kernel imports no other package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(config: Path | None = None) -> subprocess.CompletedProcess:
    args = [str(LINT), "--no-cache"] + (["--config", str(config)] if config else [])
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_package_rules_hold() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
    assert "Only orchestration imports Dagster KEPT" in result.stdout


def test_the_checker_sees_a_broken_rule(tmp_path: Path) -> None:
    """The same tool reports a rule the code breaks (orchestration does import Dagster), so a
    green run above means the rules were checked, not skipped."""
    config = tmp_path / "broken.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["orchestration"]\n'
        "include_external_packages = true\n\n"
        "[[tool.importlinter.contracts]]\n"
        'name = "orchestration without dagster"\n'
        'type = "forbidden"\n'
        'source_modules = ["orchestration"]\n'
        'forbidden_modules = ["dagster"]\n'
    )
    result = _lint(config)
    assert result.returncode != 0
    assert "orchestration without dagster BROKEN" in result.stdout


def test_no_test_folder_shadows_a_package() -> None:
    """A test folder with an `__init__.py` is imported under its own name (pytest's importlib
    mode): `tests/dbt/` became `dbt` and hid dbt-core from dagster-dbt in the same process."""
    import importlib

    import fulfillment

    spec = importlib.util.find_spec("dbt.version")
    assert spec is not None and "site-packages" in (spec.origin or ""), spec
    assert Path(fulfillment.__file__).parent == ROOT / "fulfillment"
    shadowing = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("*/__init__.py"))
    assert shadowing == [], f"remove {shadowing}: test folders are not packages here"
