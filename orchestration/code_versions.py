"""Code versions of the Python assets: a short hash of the source files that compute them.

Dagster marks an asset's materialisation stale ("code version changed") when this changes, so
the UI tells which tables were built by older logic. The modules are located, not imported:
the assets import their libraries lazily to keep run start-up cheap."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path


@functools.lru_cache(maxsize=256)
def _file_digest(module: str) -> bytes:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"code version: module {module!r} not found")
    return hashlib.sha256(Path(spec.origin).read_bytes()).digest()


def source_version(*modules: str) -> str:
    """12 hex digits over the source of `modules` (the asset's own module and the library
    modules holding its logic), in the order given."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(_file_digest(module))
    return digest.hexdigest()[:12]
