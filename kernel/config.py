"""Load a YAML rule file into a pydantic model; errors name the file, the key and the fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
# ORDERPULSE_CONFIG_DIR points every rule file at another folder (a staging copy, a test's
# broken copy); read once, when the loaders' default paths are built
CONFIG_DIR = Path(os.environ.get("ORDERPULSE_CONFIG_DIR") or REPO_CONFIG_DIR)


class ConfigError(ValueError):
    """A rule file is missing, unreadable or invalid; the message says where and how to fix it."""


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_yaml_model(path: Path | str, model: type[M]) -> M:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as err:
        raise ConfigError(
            f"{path}: file not found (copy it from the repository's config/)"
        ) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            value = e.get("input")
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            lines.append(f"{path}: {_key_path(e['loc'])}: {e['msg']}{shown}")
        raise ConfigError("\n".join(lines)) from None
