"""The orchestration tests load the Dagster definitions: the dbt manifest must be current."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _current_manifest(dbt_manifest: Path) -> Path:
    return dbt_manifest
