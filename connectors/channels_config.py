"""`config/channels.yaml`: which channels exist, how and how often they are ingested."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orderpulse.yaml_config import CONFIG_DIR, load_yaml_model


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: str = "*/10 * * * *"
    lag_minutes: int = Field(5, ge=0, le=24 * 60)
    backfill_days: int = Field(3, ge=1, le=90)
    page_size: int = Field(100, ge=1, le=1000)


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["marketplace", "sftp", "db_bridge", "file_drop"]
    enabled: bool = True
    schedule: str | None = None
    lag_minutes: int | None = Field(None, ge=0)
    backfill_days: int | None = Field(None, ge=1)
    page_size: int | None = Field(None, ge=1, le=1000)

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: Defaults = Defaults()
    channels: dict[str, ChannelConfig]

    @model_validator(mode="after")
    def _fill_defaults(self) -> ChannelsFile:
        for channel in self.channels.values():
            for key in ("schedule", "lag_minutes", "backfill_days", "page_size"):
                if getattr(channel, key) is None:
                    setattr(channel, key, getattr(self.defaults, key))
        return self

    def of_kind(self, kind: str) -> dict[str, ChannelConfig]:
        return {k: v for k, v in self.channels.items() if v.kind == kind and v.enabled}


def load_channels(path: Path | str | None = None) -> ChannelsFile:
    return load_yaml_model(path or CONFIG_DIR / "channels.yaml", ChannelsFile)
