"""The inventory rule file (`config/inventory.yaml`) as pydantic models, validated on load.

`load_inventory_rules()` reads and validates the file; an error names the file, the key path
and the fix. Operations edit the YAML: the pause-sale thresholds (a default and per-SKU
overrides), the channels whose orders never lock WMS stock, the merge window and the
platform-vs-WMS reconciliation's tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kernel.config import CONFIG_DIR, load_yaml_model

DEFAULT_PATH = CONFIG_DIR / "inventory.yaml"


class _Model(BaseModel):
    # a misspelt key is an error, not a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


class LockRules(_Model):
    exclude_channels: tuple[str, ...] = ("pos",)


class PauseSaleRules(_Model):
    default_threshold: int = Field(default=5, ge=0, description="units; pause when under it")
    sku_thresholds: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)

    def threshold_of(self, sku: str) -> int:
        return self.sku_thresholds.get(sku, self.default_threshold)


class ReconciliationRules(_Model):
    tolerance: int = Field(
        default=3, ge=0, description="units; a larger |platform - WMS| is a diff"
    )


class MergeRules(_Model):
    window_minutes: float = Field(default=30, gt=0, le=24 * 60)
    # sales taken over the counter: no parcel to share
    exclude_channels: tuple[str, ...] = ("pos",)


class InventoryRules(_Model):
    version: str = "unversioned"
    locks: LockRules = LockRules()
    pause_sale: PauseSaleRules = PauseSaleRules()
    merge: MergeRules = MergeRules()
    reconciliation: ReconciliationRules = ReconciliationRules()
    source: str | None = None


def load_inventory_rules(path: Path | str | None = None) -> InventoryRules:
    """Read and validate an inventory rule file (default `config/inventory.yaml`).

    Raises `kernel.config.ConfigError` naming the file, the key path and the fix."""
    path = Path(path) if path is not None else DEFAULT_PATH
    rules = load_yaml_model(path, InventoryRules)
    return rules.model_copy(update={"source": str(path)})
