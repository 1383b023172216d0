"""`orderpulse rules check`: every rule file validates, and a broken one is refused with the
file, the key and the fix (exit code 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).resolve().parents[2] / "config"


def _rules(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "orderpulse"), "rules", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_the_shipped_rule_files_are_valid() -> None:
    result = _rules("check")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "routing.yaml" in result.stdout
    assert "channels.yaml" in result.stdout
    assert "risk.yaml" in result.stdout


def test_a_broken_risk_file_is_refused_naming_file_key_and_fix(tmp_path: Path) -> None:
    text = (CONFIG / "risk.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "risk_proposal.yaml"
    broken.write_text(text.replace("subsidy_share: 0.30", "subsidy_share: 30"), "utf-8")
    result = _rules("check", str(broken))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert str(broken) in message
    assert "coupons.subsidy_share" in message and "0.30 for 30 %" in message


def test_a_broken_routing_file_is_refused_naming_file_key_and_fix(tmp_path: Path) -> None:
    text = (CONFIG / "routing.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "routing_proposal.yaml"
    broken.write_text(text.replace("freight_share: 0.15", "freight_share: 1.5"), "utf-8")
    result = _rules("check", str(broken))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert str(broken) in message
    assert "thresholds.freight_share" in message


def test_an_unknown_file_kind_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "prices.yaml"
    other.write_text("a: 1\n")
    result = _rules("check", str(other))
    assert result.returncode == 1
    assert "not a known rule file" in " ".join(result.stderr.split())
