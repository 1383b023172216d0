"""config/channels.yaml is the one channel registry: the dbt project names exactly its
channels in its order, and every channel has the places the README's "Adding a channel" lists
(a staging folder with its source, a connector module for a marketplace)."""

from __future__ import annotations

from pathlib import Path

import yaml

from connectors.channels_config import load_channels

ROOT = Path(__file__).resolve().parents[1]
DBT = ROOT / "dbt_project"


def test_the_dbt_project_lists_exactly_the_registry_channels_in_order() -> None:
    registry = list(load_channels(ROOT / "config" / "channels.yaml").channels)
    dbt_vars = yaml.safe_load((DBT / "dbt_project.yml").read_text())["vars"]
    assert dbt_vars["order_channels"] == registry, (
        "dbt_project/dbt_project.yml vars.order_channels must list the channels of "
        f"config/channels.yaml in its order: set it to {registry}"
    )


def test_every_channel_has_its_staging_folder_source_and_models() -> None:
    missing = []
    for channel in load_channels(ROOT / "config" / "channels.yaml").channels:
        folder = DBT / "models" / "staging" / channel
        for name in (
            f"_{channel}__sources.yml",
            f"stg_{channel}__orders.sql",
            f"stg_{channel}__order_items.sql",
        ):
            if not (folder / name).exists():
                missing.append(str((folder / name).relative_to(ROOT)))
        sources = folder / f"_{channel}__sources.yml"
        if sources.exists():
            tables = {
                t["name"]
                for s in yaml.safe_load(sources.read_text())["sources"]
                for t in s["tables"]
            }
            if f"{channel}_orders" not in tables:
                missing.append(f"{sources.relative_to(ROOT)}: table {channel}_orders")
    assert missing == [], f"add: {missing}"


def test_every_marketplace_has_its_connector_module() -> None:
    registry = load_channels(ROOT / "config" / "channels.yaml")
    missing = [
        f"connectors/{c}.py"
        for c in registry.of_kind("marketplace")
        if not (ROOT / "connectors" / f"{c}.py").exists()
    ]
    assert missing == []
