"""The risk rule file (`config/risk.yaml`) as pydantic models, validated on load.

`load_risk_rules()` reads and validates the file; an error names the file, the key path and the
fix (`config/risk.yaml: weights.ip_burst: 120 is out of range 0..100`). Operations edit the YAML,
never this module: every weight, word list and threshold `fulfillment.risk` uses lives there.
"""

from __future__ import annotations

import hashlib
import re
from datetime import time
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel.config import CONFIG_DIR, load_yaml_model

DEFAULT_PATH = CONFIG_DIR / "risk.yaml"

# Every signal `fulfillment.risk.assess` can fire, by layer (each needs a weight in the file).
SIGNALS: dict[str, tuple[str, ...]] = {
    "validation": (
        "missing_required_fields",
        "b2b_address",
        "virtual_carrier_phone",
        "big_first_order",
    ),
    "behaviour": (
        "ip_burst",
        "cart_churn",
        "night_payment",
        "shared_device",
        "shared_ip",
        "shared_receiver_phone",
    ),
    "coupons": ("daily_subsidy_share", "coupon_stacking"),
    "cross_border": ("customs_incomplete",),
}
ALL_SIGNALS: tuple[str, ...] = tuple(s for layer in SIGNALS.values() for s in layer)

# The `intermediate.int_orders` columns a rule may name as required.
ORDER_FIELDS = (
    "buyer_id",
    "buyer_ip",
    "receiver_name",
    "receiver_phone",
    "receiver_address",
    "province",
    "city",
    "district",
    "country",
    "goods_value",
    "paid_at",
    "created_at",
    "currency",
    "hs_code",
    "declared_value",
)

NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    # a misspelt key is an error, not a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_fields(fields: list[str]) -> list[str]:
    unknown = [f for f in fields if f not in ORDER_FIELDS]
    if unknown:
        raise ValueError(f"{unknown} are not order fields; use some of {', '.join(ORDER_FIELDS)}")
    return fields


class Review(_Model):
    threshold: float = Field(default=80, ge=0, le=100)
    hold_hours: float = Field(default=72, gt=0)
    always: list[NonEmpty] = Field(default_factory=list)

    @field_validator("always")
    @classmethod
    def _signals(cls, v: list[str]) -> list[str]:
        unknown = [s for s in v if s not in ALL_SIGNALS]
        if unknown:
            raise ValueError(f"{unknown} are not signals; use some of {', '.join(ALL_SIGNALS)}")
        return v


class Validation(_Model):
    required_fields: list[NonEmpty]
    business_address_words: list[NonEmpty] = Field(min_length=1)
    virtual_carrier_prefixes: list[Annotated[str, Field(pattern=r"^1[0-9]{2,3}$")]] = Field(
        min_length=1, description="mobile prefixes as quoted strings: '170', not 170"
    )
    first_order_yuan: float = Field(default=5000, gt=0)

    @field_validator("required_fields")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        return _known_fields(v)


class Night(_Model):
    start: time
    end: time

    @model_validator(mode="after")
    def _order(self) -> Night:
        if self.start == self.end:
            raise ValueError(
                f"start {self.start} equals end: write e.g. start '02:00', end '04:00'"
            )
        return self

    def minutes(self) -> tuple[int, int]:
        return self.start.hour * 60 + self.start.minute, self.end.hour * 60 + self.end.minute


class Behaviour(_Model):
    orders_per_ip_hour: int = Field(default=5, gt=0)
    cart_events_per_minute: int = Field(default=20, gt=0)
    night: Night
    cart_lookback_minutes: float = Field(default=60, gt=0)
    shared_buyers: int = Field(default=3, ge=2)
    identifier_max_buyers: int = Field(default=20, ge=2)
    window_hours: float = Field(default=48, gt=0)

    @model_validator(mode="after")
    def _shared(self) -> Behaviour:
        if self.identifier_max_buyers < self.shared_buyers:
            raise ValueError(
                f"identifier_max_buyers {self.identifier_max_buyers} is below shared_buyers "
                f"{self.shared_buyers}: no shared_* signal could fire; raise it (e.g. 20)"
            )
        return self


class Coupons(_Model):
    subsidy_share: float = Field(default=0.30, gt=0)
    stacked_channels: int = Field(default=2, ge=2)

    @field_validator("subsidy_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if v > 1:
            raise ValueError(f"{v} is a share 0..1 (write 0.30 for 30 %)")
        return v


class CrossBorder(_Model):
    home_country: NonEmpty = "CN"
    required_fields: list[NonEmpty]
    hs_code_pattern: NonEmpty = r"^[0-9]{6,10}$"

    @field_validator("required_fields")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        return _known_fields(v)

    @field_validator("hs_code_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as err:
            raise ValueError(f"{v!r} is not a regular expression ({err})") from None
        return v


class LearnedScore(_Model):
    """The learned score (`fulfillment.risk_model`): a gradient-boosted tree ensemble on the
    order features, trained on an earlier window of reviewed orders; it holds an order the
    rules let pass when its probability of being bad is above a threshold chosen on the
    training window's later part (the validation slice) so that rules + model hold at most
    `honest_hold_target` of that slice's honest orders. `min_reviewed` / `min_each`: the
    orders with a verdict (a reviewer's decision, a chargeback or an audit) and the bad and
    honest ones each the warehouse must hold before the retrain asset trains; fewer, and risk
    stays with the rules alone. `history_days`: how
    far back the reviewed orders reach. `fit_unreviewed_as_honest`: fit on every order of the
    window, the unreviewed ones as honest (else on the reviewed orders only).
    `label_window_days`: a chargeback or an audit verdict may still come this long after
    payment; only orders paid before it closed are trained on, the newer ones are unlabelled."""

    learning_rate: float = Field(default=0.1, gt=0, le=1)
    max_iter: int = Field(default=200, ge=10, le=2000)
    max_leaf_nodes: int = Field(default=31, ge=2, le=255)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=1.0, ge=0)
    calibration_share: float = Field(default=0.25, gt=0, lt=1)
    honest_hold_target: float = Field(default=0.0095, ge=0, le=0.2)
    min_reviewed: int = Field(default=200, ge=2)
    min_each: int = Field(default=20, ge=1)
    history_days: int = Field(default=90, ge=1)
    fit_unreviewed_as_honest: bool = True
    label_window_days: float = Field(default=7, ge=0, le=365)
    random_state: int = 0


class RiskRules(_Model):
    version: NonEmpty
    review: Review
    weights: dict[str, float]
    validation: Validation
    behaviour: Behaviour
    coupons: Coupons
    cross_border: CrossBorder
    model: LearnedScore = Field(default_factory=LearnedScore)
    source: str | None = Field(default=None, description="set by the loader, not in the file")

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(ALL_SIGNALS))
        if unknown:
            raise ValueError(f"{unknown} are not signals; use some of {', '.join(ALL_SIGNALS)}")
        missing = [s for s in ALL_SIGNALS if s not in v]
        if missing:
            raise ValueError(
                f"no weight for {missing}: add e.g. `{missing[0]}: 30` (0 turns it off)"
            )
        bad = {k: w for k, w in v.items() if not 0 <= w <= 100}
        if bad:
            raise ValueError(f"{bad}: weights are out of range 0..100")
        return v

    def fingerprint(self) -> str:
        """A short hash of the whole rule set (the version string may not change on an edit)."""
        return hashlib.sha256(self.model_dump_json(exclude={"source"}).encode()).hexdigest()[:12]


def load_risk_rules(path: Path | str | None = None) -> RiskRules:
    """Read and validate a risk rule file (default `config/risk.yaml`).

    Raises `kernel.config.ConfigError` naming the file, the key path and the fix."""
    path = Path(path) if path is not None else DEFAULT_PATH
    rules = load_yaml_model(path, RiskRules)
    return rules.model_copy(update={"source": str(path)})
