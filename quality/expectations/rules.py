"""The data-check bounds (`config/data_checks.yaml`) as pydantic models, validated on load.

`load_data_check_rules()` reads the file; an error names the file, the key path and the fix.
`parameters(...)` turns the rules and a pinned "now" into the suite parameters the JSON suites
name with `{"$PARAMETER": ...}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kernel.config import CONFIG_DIR, load_yaml_model

DEFAULT_PATH = CONFIG_DIR / "data_checks.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimestampRules(_Strict):
    not_before: AwareDatetime
    max_future_skew_minutes: int = Field(ge=0, le=24 * 60)


class AmountRules(_Strict):
    max_yuan: float = Field(gt=0)


class RowCountRules(_Strict):
    max_drop_pct: float = Field(ge=0, le=100)
    max_growth_pct: float = Field(ge=0)
    growth_allowance: int = Field(ge=0)


class FreshnessRules(_Strict):
    default_quiet_hours: float = Field(gt=0)
    channels: dict[str, float] = {}

    def quiet_hours(self, channel: str) -> float:
        return self.channels.get(channel, self.default_quiet_hours)


class DataCheckRules(_Strict):
    timestamps: TimestampRules
    amounts: AmountRules
    row_count: RowCountRules
    freshness: FreshnessRules
    sample_rows: int = Field(default=5, ge=0, le=50)


def load_data_check_rules(path: Path | str = DEFAULT_PATH) -> DataCheckRules:
    return load_yaml_model(path, DataCheckRules)


def parameters(
    rules: DataCheckRules,
    now: datetime,
    *,
    channel: str | None = None,
    previous_row_count: int | None = None,
) -> dict[str, object]:
    """Suite parameters for a run at `now` (timezone-aware). Row-count bounds are open when
    no previous count is known (the first check of a table)."""
    if now.tzinfo is None:
        raise ValueError("now needs a timezone (e.g. datetime.now(UTC))")
    skew = timedelta(minutes=rules.timestamps.max_future_skew_minutes)
    out: dict[str, object] = {
        "not_before": rules.timestamps.not_before,
        "not_after": now + skew,
        "max_amount": rules.amounts.max_yuan,
        "row_count_min": 0,
        "row_count_max": None,
    }
    if channel is not None:
        out["channels"] = [channel]
        out["fresh_after"] = now - timedelta(hours=rules.freshness.quiet_hours(channel))
    if previous_row_count is not None:
        rc = rules.row_count
        out["row_count_min"] = int(previous_row_count * (1 - rc.max_drop_pct / 100))
        out["row_count_max"] = int(
            previous_row_count * (1 + rc.max_growth_pct / 100) + rc.growth_allowance
        )
    return out
