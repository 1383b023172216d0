"""The routing rule file (`config/routing.yaml`) as pydantic models, validated on load.

`load_routing_rules()` reads and validates the file; an error names the file, the key path and
the fix (`config/routing.yaml: warehouses[2].latitude: 95.3 is out of range -90..90`).
`resolve_hot_skus()` turns the hot-SKU section (a list, or top-N over a sales window) into a set.
Operations edit the YAML, never this module: every number the router uses lives there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kernel.config import CONFIG_DIR, load_yaml_model

DEFAULT_PATH = CONFIG_DIR / "routing.yaml"

# The rules the chain knows, in the default order of issue 10.
RULES = (
    "circuit_breaker",
    "front_hot_skus",
    "near_stock",
    "remote_region",
    "freight_share",
    "weighted_score",
)

NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    # a misspelt key is an error, not a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


class Warehouse(_Model):
    id: NonEmpty
    name: str = ""
    latitude: float
    longitude: float
    daily_capacity: int = Field(gt=0, description="orders (shipments) per day")
    is_front: bool = False
    is_national: bool = True
    safety_threshold: int = Field(
        default=10, ge=0, description="per-SKU safety stock when the stock rows carry none"
    )

    @field_validator("latitude")
    @classmethod
    def _lat(cls, v: float) -> float:
        if not -90 <= v <= 90:
            raise ValueError(f"{v} is out of range -90..90 (degrees north; swap with longitude?)")
        return v

    @field_validator("longitude")
    @classmethod
    def _lon(cls, v: float) -> float:
        if not -180 <= v <= 180:
            raise ValueError(f"{v} is out of range -180..180 (degrees east)")
        return v


class HotSkus(_Model):
    """Either `listed` SKUs, or the `top_n` best sellers (by quantity) over `window_days`."""

    listed: list[NonEmpty] | None = None
    top_n: int | None = Field(default=None, gt=0)
    window_days: int = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> HotSkus:
        if (self.listed is None) == (self.top_n is None):
            raise ValueError("set exactly one of `listed: [sku, ...]` or `top_n: 50`")
        return self


class FreightModel(_Model):
    """Estimated carrier cost in yuan: first_kg[band] + extra_kg[band] × (kg above the first),
    plus remote_surcharge for a remote-region receiver. One entry per distance band."""

    first_kg: list[float]
    extra_kg: list[float]
    remote_surcharge: float = Field(default=0.0, ge=0)

    @field_validator("first_kg", "extra_kg")
    @classmethod
    def _non_negative(cls, v: list[float]) -> list[float]:
        if any(x < 0 for x in v):
            raise ValueError(f"{v}: prices are yuan and must be >= 0")
        return v


class Carrier(_Model):
    id: NonEmpty
    name: str = ""
    covers: Literal["all"] | list[NonEmpty] = Field(
        description="provinces the carrier's SLA covers, or 'all'"
    )
    excludes_remote: bool = Field(
        default=False, description="no SLA in the remote regions even when covers is 'all'"
    )
    channels: list[NonEmpty] | None = Field(
        default=None, description="only orders of these channels (e.g. JD logistics for jd)"
    )
    warehouses: Literal["all"] | list[NonEmpty] = "all"
    on_time_rate: float
    transit_days: list[float] = Field(description="per distance band, from pickup")
    remote_transit_days: float | None = None
    freight: FreightModel

    @field_validator("on_time_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError(f"{v} is out of range 0..1 (a share: write 0.95, not 95)")
        return v

    @field_validator("transit_days")
    @classmethod
    def _days(cls, v: list[float]) -> list[float]:
        if any(x <= 0 for x in v):
            raise ValueError(f"{v}: transit days must be > 0")
        return v


class Thresholds(_Model):
    near_km: float = Field(default=200, gt=0)
    front_radius_km: float = Field(default=60, gt=0)
    freight_share: float = Field(default=0.15, gt=0)
    stock_sync_stale_minutes: float = Field(default=30, gt=0)
    consecutive_shipping_failures: int = Field(default=3, gt=0)
    low_stock_share: float = Field(default=0.15, ge=0)
    distance_bands_km: list[float] = Field(default=[300, 1200])

    @field_validator("freight_share", "low_stock_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if v > 1:
            raise ValueError(f"{v} is a share 0..1 (write 0.15 for 15 %)")
        return v

    @field_validator("distance_bands_km")
    @classmethod
    def _bands(cls, v: list[float]) -> list[float]:
        if not v or any(b <= a for a, b in zip(v, v[1:], strict=False)) or v[0] <= 0:
            raise ValueError(
                f"{v}: band edges must be > 0 and strictly increasing, e.g. [300, 1200]"
            )
        return v


class ScoreWeights(_Model):
    """score = base − distance × distance_points + stock × stock_points + on_time × on_time_points
    (each *_points is on a 0..100 scale; see config/routing.yaml for the units)."""

    base: float = 100
    distance: float = 0.3
    stock: float = 0.4
    on_time: float = 0.3
    distance_scale_km: float = Field(default=3000, gt=0)
    stock_full_cover: float = Field(default=2.0, gt=0)


class Fallback(_Model):
    action: Literal["manual_review", "rules", "auto_cancel"] = "manual_review"
    rules_file: str | None = Field(default=None, description="for action 'rules'")
    auto_cancel_after_hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> Fallback:
        if self.action == "rules" and not self.rules_file:
            raise ValueError("action 'rules' needs `rules_file: routing_fallback.yaml`")
        if self.action == "auto_cancel" and self.auto_cancel_after_hours is None:
            raise ValueError("action 'auto_cancel' needs `auto_cancel_after_hours: 72`")
        return self


class Promise(_Model):
    quantile: float = Field(default=0.8, gt=0, lt=1)
    min_samples: int = Field(default=20, gt=0)
    history_days: int = Field(default=30, gt=0)
    handling_hours: float = Field(default=24, ge=0)
    # hour resolution (fulfillment/promise.py): a shift per paid hour of day, and hours of the
    # day with fewer than this share of the history's deliveries closed (None: all open)
    by_paid_hour: bool = False
    closed_hour_share: float | None = Field(default=None, ge=0, lt=1)


class RoutingRules(_Model):
    # field order matters: the validators of warehouses and carriers read thresholds and ids
    version: NonEmpty
    chain: list[Literal[RULES]] = Field(default=list(RULES))  # type: ignore[valid-type]
    thresholds: Thresholds = Thresholds()
    warehouses: list[Warehouse] = Field(min_length=1)
    hot_skus: HotSkus
    carriers: list[Carrier] = Field(min_length=1)
    remote_regions: list[NonEmpty] = Field(default_factory=list)
    score: ScoreWeights = ScoreWeights()
    split_policy: Literal["split", "manual_review"] = "split"
    fallback: Fallback = Fallback()
    promise: Promise = Promise()
    default_item_weight_kg: float = Field(default=0.5, gt=0)
    source: str | None = Field(default=None, exclude=True, description="file it was read from")

    @field_validator("chain")
    @classmethod
    def _chain(cls, v: list[str]) -> list[str]:
        twice = sorted({r for r in v if v.count(r) > 1})
        if twice:
            raise ValueError(f"{twice} listed twice: list each rule once")
        return v

    @field_validator("warehouses")
    @classmethod
    def _warehouses(cls, v: list[Warehouse]) -> list[Warehouse]:
        ids = [w.id for w in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate id {dup}: give every warehouse its own id")
        if not any(w.is_national for w in v):
            raise ValueError(
                "no warehouse has is_national: true; the circuit breaker falls back to one"
            )
        return v

    @field_validator("carriers")
    @classmethod
    def _carriers(cls, v: list[Carrier], info: ValidationInfo) -> list[Carrier]:
        cids = [c.id for c in v]
        dup = sorted({i for i in cids if cids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate id {dup}: give every carrier its own id")
        thresholds = info.data.get("thresholds")
        edges = thresholds.distance_bands_km if thresholds else Thresholds().distance_bands_km
        bands = len(edges) + 1
        ids = [w.id for w in info.data.get("warehouses") or []]
        for i, c in enumerate(v):
            for key, n in (
                ("transit_days", len(c.transit_days)),
                ("freight.first_kg", len(c.freight.first_kg)),
                ("freight.extra_kg", len(c.freight.extra_kg)),
            ):
                if n != bands:
                    raise ValueError(
                        f"[{i}].{key}: {n} values for {bands} distance bands "
                        f"(thresholds.distance_bands_km {edges}): give one value per band"
                    )
            if isinstance(c.warehouses, list) and ids:
                unknown = sorted(set(c.warehouses) - set(ids))
                if unknown:
                    raise ValueError(f"[{i}].warehouses: {unknown} are not warehouses ({ids})")
        return v

    # -- helpers --------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A short hash of the whole rule set (the version string may not change on an edit)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def warehouse_ids(self) -> list[str]:
        return [w.id for w in self.warehouses]


def load_routing_rules(path: Path | str | None = None) -> RoutingRules:
    """Read and validate a routing rule file (default `config/routing.yaml`).

    Raises `kernel.config.ConfigError` naming the file, the key path and the fix."""
    path = Path(path) if path is not None else DEFAULT_PATH
    rules = load_yaml_model(path, RoutingRules)
    return rules.model_copy(update={"source": str(path)})


def resolve_hot_skus(
    rules: RoutingRules, line_history: pd.DataFrame | None = None, now: datetime | None = None
) -> frozenset[str]:
    """The hot SKUs: the listed ones, or the `top_n` SKUs by quantity sold over the last
    `window_days` before `now` in `line_history` (columns sku, qty, paid_at). Ties go to the
    smaller SKU code, so the set is deterministic."""
    hot = rules.hot_skus
    if hot.listed is not None:
        return frozenset(hot.listed)
    if line_history is None or now is None:
        raise ValueError(
            f"{rules.source or 'routing rules'}: hot_skus.top_n needs the order-line history "
            "(sku, qty, paid_at) and `now`, or list the SKUs under hot_skus.listed"
        )
    paid = pd.to_datetime(line_history["paid_at"], utc=True)
    end = pd.Timestamp(now)
    end = end.tz_convert("UTC") if end.tzinfo else end.tz_localize("UTC")
    window = line_history[(paid > end - timedelta(days=hot.window_days)) & (paid <= end)]
    sold = window.groupby("sku", sort=False)["qty"].sum().reset_index()
    sold = sold.sort_values(["qty", "sku"], ascending=[False, True], kind="mergesort")
    return frozenset(sold["sku"].head(hot.top_n).astype(str))


def remote_set(rules: RoutingRules) -> frozenset[str]:
    return frozenset(rules.remote_regions)


def carriers_covering(rules: RoutingRules, province: str) -> Iterable[str]:
    """Carrier ids whose SLA covers `province` (for messages and tests)."""
    remote = province in remote_set(rules)
    for c in rules.carriers:
        if remote and c.excludes_remote:
            continue
        if c.covers == "all" or province in c.covers:
            yield c.id
