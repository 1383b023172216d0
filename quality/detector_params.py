"""Validate a detector's thresholds (`rules.<rule>.params` of config/alerts.yaml).

Each detector declares its params as a small pydantic model; a wrong value fails with the
file, the key and the fix, like every other rule file (kernel.config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kernel.config import ConfigError

P = TypeVar("P", bound=BaseModel)


class DetectorParams(BaseModel):
    # a misspelt threshold is an error, not a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_params(rule: str, params: Mapping[str, Any] | BaseModel | None, model: type[P]) -> P:
    """`params` as `model`; a ready model passes through (tests and callers may build one)."""
    if isinstance(params, model):
        return params
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = ".".join(str(part) for part in e["loc"])
            value = e.get("input")
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            lines.append(
                f"config/alerts.yaml: rules.{rule}.params.{key}: {e['msg']}{shown}; "
                f"fix the value or remove the key for the default"
            )
        raise ConfigError("\n".join(lines)) from None
