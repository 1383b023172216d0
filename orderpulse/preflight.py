"""Checks every CLI command that runs the pipeline makes before it touches any data: each rule
file under the config folder (config/ or ORDERPULSE_CONFIG_DIR) loads and validates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kernel.config import ConfigError


def rule_loaders() -> dict[str, Callable[[Path], object]]:
    """Each kind of rule file (config/<kind>.yaml) and the loader that validates it."""
    from connectors.channels_config import load_channels
    from fulfillment.inventory_rules import load_inventory_rules
    from fulfillment.risk_rules import load_risk_rules
    from fulfillment.routing_rules import load_routing_rules
    from quality.alert_rules import load_alert_config
    from quality.expectations.rules import load_data_check_rules
    from quality.health_index import load_health_index

    return {
        "channels": load_channels,
        "routing": load_routing_rules,
        "risk": load_risk_rules,
        "inventory": load_inventory_rules,
        "alerts": load_alert_config,
        "data_checks": load_data_check_rules,
        "health_index": load_health_index,
    }


def kind_of(path: Path, kinds: list[str]) -> str | None:
    """The rule-file kind a file name starts with (the longest match: `risk_proposal.yaml`)."""
    matches = [k for k in kinds if path.name.startswith(k)]
    return max(matches, key=len) if matches else None


def config_problems(config_dir: Path | None = None) -> list[str]:
    """Every problem of every rule file in `config_dir` (default: the configured folder), one
    message per problem naming the file, the key and the fix; empty when all are valid."""
    from kernel.config import CONFIG_DIR

    folder = config_dir or CONFIG_DIR
    problems: list[str] = []
    for kind, load in rule_loaders().items():
        try:
            load(folder / f"{kind}.yaml")
        except ConfigError as exc:
            problems.extend(line for line in str(exc).splitlines() if line.strip())
        except ValueError as exc:  # a loader's own cross-field check
            problems.append(f"{folder / f'{kind}.yaml'}: {exc}")
    return problems
