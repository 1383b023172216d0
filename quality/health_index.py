"""The Order Health Index settings (`config/health_index.yaml`) and the OHI formula.

`load_health_index()` reads and validates the file; an error names the file, the key path and
the fix (`config/health_index.yaml: weights: the weights sum to 1.05, not 1: ...`).
`ohi(scores, weights)` combines the five sub-scores the way `marts.order_health_daily` does
in SQL: the weighted mean over the sub-scores that have a value. dbt reads the same settings
from the var `order_health_index` (`dbt_var()` gives its expected value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel.config import CONFIG_DIR, load_yaml_model

DEFAULT_PATH = CONFIG_DIR / "health_index.yaml"

SUB_SCORES = ("timeliness", "completeness", "consistency", "accuracy", "controllability")

# int_orders columns completeness may require (the standard order fields)
ORDER_FIELDS = (
    "shop_id", "buyer_id", "buyer_nick", "buyer_ip",
    "receiver_name", "receiver_phone", "receiver_address",
    "province", "city", "district", "country",
    "goods_value", "platform_discount", "shop_discount", "discount_amount", "freight",
    "paid_amount", "currency", "platform_status", "refund_status",
    "buyer_note", "seller_note", "carrier", "tracking_no", "hs_code", "declared_value",
    "created_at", "paid_at", "shipped_at", "delivered_at", "closed_at", "modified_at",
)  # fmt: skip

# the unified statuses an order can wait in on the merchant's side (stuck candidates)
WAITING_STATUSES = (
    "paid_pending_review", "risk_review", "pending_allocation", "allocated", "picking",
    "awaiting_pickup", "pickup_failed", "in_transit",
)  # fmt: skip

NonEmpty = Annotated[str, Field(min_length=1)]
Weight = Annotated[float, Field(ge=0, le=1)]
Minutes = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    # a misspelt key is an error, not a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Model):
    """The share of each sub-score in the OHI (0..1, summing to 1)."""

    timeliness: Weight
    completeness: Weight
    consistency: Weight
    accuracy: Weight
    controllability: Weight

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = sum(self.as_dict().values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(
                f"the weights sum to {total:g}, not 1: change them so they add up to 1 "
                "(e.g. 0.25, 0.20, 0.20, 0.15, 0.20)"
            )
        return self

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SUB_SCORES}


class SyncWindow(_Model):
    """Full credit for a delay up to target_minutes, none from limit_minutes, linear between."""

    target_minutes: Minutes
    limit_minutes: Minutes

    @model_validator(mode="after")
    def _ordered(self) -> SyncWindow:
        if self.limit_minutes <= self.target_minutes:
            raise ValueError(
                f"limit_minutes {self.limit_minutes:g} must be above target_minutes "
                f"{self.target_minutes:g}: raise limit_minutes (e.g. {self.target_minutes * 8:g})"
            )
        return self


class Timeliness(SyncWindow):
    channels: dict[NonEmpty, SyncWindow] = Field(default_factory=dict)

    def window(self, channel: str) -> SyncWindow:
        default = SyncWindow(target_minutes=self.target_minutes, limit_minutes=self.limit_minutes)
        return self.channels.get(channel, default)


def _known_fields(fields: list[str]) -> list[str]:
    unknown = [f for f in fields if f not in ORDER_FIELDS]
    if unknown:
        raise ValueError(f"{unknown} are not order fields; use some of {', '.join(ORDER_FIELDS)}")
    return fields


class Completeness(_Model):
    required_fields: list[NonEmpty] = Field(min_length=1)
    required_when_paid: list[NonEmpty] = Field(default_factory=list)

    @field_validator("required_fields", "required_when_paid")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        return _known_fields(v)


class Controllability(_Model):
    stuck_hours: Annotated[float, Field(gt=0)]
    stuck_statuses: list[NonEmpty] = Field(min_length=1)
    escalated_priorities: list[NonEmpty] = Field(default_factory=list)

    @field_validator("stuck_statuses")
    @classmethod
    def _statuses(cls, v: list[str]) -> list[str]:
        unknown = [s for s in v if s not in WAITING_STATUSES]
        if unknown:
            raise ValueError(
                f"{unknown} are not statuses an order waits in; use some of "
                f"{', '.join(WAITING_STATUSES)}"
            )
        return v


class HealthIndex(_Model):
    version: NonEmpty
    weights: Weights
    timeliness: Timeliness
    completeness: Completeness
    controllability: Controllability
    source: str | None = Field(default=None, description="set by the loader, not in the file")

    def dbt_var(self) -> dict[str, Any]:
        """What the dbt var `order_health_index` must hold (everything but the bookkeeping)."""
        return self.model_dump(mode="json", exclude={"version", "source"})


def load_health_index(path: Path | str | None = None) -> HealthIndex:
    """Read and validate an OHI settings file (default `config/health_index.yaml`).

    Raises `kernel.config.ConfigError` naming the file, the key path and the fix."""
    path = Path(path) if path is not None else DEFAULT_PATH
    settings = load_yaml_model(path, HealthIndex)
    return settings.model_copy(update={"source": str(path)})


def ohi(scores: Mapping[str, float | None], weights: Weights) -> float | None:
    """The OHI (0-100) from the five sub-scores: their weighted mean over those that are not
    None (a sub-score with nothing to measure that day leaves the others' weights scaled up);
    None when no sub-score has a value. Unknown or missing names are an error."""
    names = set(scores)
    if names != set(SUB_SCORES):
        raise ValueError(
            f"sub-scores {sorted(names)} differ from {list(SUB_SCORES)}: give all five "
            "(None for one with nothing to measure)"
        )
    w = weights.as_dict()
    present = {k: float(v) for k, v in scores.items() if v is not None}
    bad = {k: v for k, v in present.items() if not 0 <= v <= 100}
    if bad:
        raise ValueError(f"sub-scores {bad} are out of range 0..100")
    total = sum(w[k] for k in present)
    if not present or total == 0:
        return None
    return sum(w[k] * v for k, v in present.items()) / total
