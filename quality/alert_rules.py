"""The alert rule file (`config/alerts.yaml`) as pydantic models, validated on load.

Each rule names its severity, its owner (a key of `recipients`), its cool-down, whether it
also goes to the group robot, and the detector's thresholds under `params`. An error names the
file, the key path and the fix (`config/alerts.yaml: rules.order_pulse.owner: 'ops' is not a
recipient; use one of operations_lead, ...`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kernel.config import CONFIG_DIR, load_yaml_model

DEFAULT_PATH = CONFIG_DIR / "alerts.yaml"

# Every rule some code raises; the file must configure each of them.
KNOWN_RULES: tuple[str, ...] = (
    "order_pulse",
    "stuck_orders",
    "delivery_timeout",
    "price_difference",
    "return_interception",
    "cs_escalation",
    "inventory_oversold",
    "stock_mismatch",
    "stock_below_safety",
    "health_index",
    "run_failure",
    "check_failure",
    "routing_circuit_breaker",
    "daily_health_digest",
    "monthly_reconciliation",
)

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class _Model(BaseModel):
    # a misspelt key is an error, not a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertRule(_Model):
    severity: Literal["info", "warning", "critical"]
    owner: str = Field(min_length=1)
    cooldown_minutes: int = Field(default=360, ge=0)
    robot: bool = False
    params: dict[str, Any] = Field(default_factory=dict)


class AlertConfig(_Model):
    recipients: dict[str, list[Email]]
    rules: dict[str, AlertRule]

    @model_validator(mode="after")
    def _owners_and_rules(self) -> AlertConfig:
        empty = [owner for owner, emails in self.recipients.items() if not emails]
        if empty:
            raise ValueError(f"recipients {empty} have no address; list at least one e-mail")
        owners = ", ".join(sorted(self.recipients))
        for name, rule in self.rules.items():
            if rule.owner not in self.recipients:
                raise ValueError(
                    f"rules.{name}.owner: {rule.owner!r} is not a recipient; use one of {owners} "
                    "or add it under recipients"
                )
        missing = [r for r in KNOWN_RULES if r not in self.rules]
        if missing:
            raise ValueError(f"rules {missing} are missing; add them (each needs severity, owner)")
        return self

    def rule(self, name: str) -> AlertRule:
        try:
            return self.rules[name]
        except KeyError:
            raise KeyError(
                f"alert rule {name!r} is not in config/alerts.yaml; add it under rules"
            ) from None

    def recipients_of(self, rule: str) -> list[str]:
        return list(self.recipients[self.rule(rule).owner])


def load_alert_config(path: Path | None = None) -> AlertConfig:
    """Read and validate the alert rules (default `config/alerts.yaml`)."""
    return load_yaml_model(path or DEFAULT_PATH, AlertConfig)
