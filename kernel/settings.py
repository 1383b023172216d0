"""Process-wide settings read from the environment (and `.env`)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where OrderPulse keeps its local state and which PostgreSQL it uses."""

    model_config = SettingsConfigDict(env_prefix="ORDERPULSE_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".orderpulse"), description="All local state lives here.")
    pg_url: str | None = Field(default=None, description="External PostgreSQL; unset = embedded.")

    @cached_property
    def home_dir(self) -> Path:
        path = self.home.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def pgdata(self) -> Path:
        return self.home_dir / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.home_dir / "dagster"

    @property
    def outbox(self) -> Path:
        return self.home_dir / "outbox"

    @property
    def sandbox_file(self) -> Path:
        return self.home_dir / "sandbox.json"


def get_settings() -> Settings:
    return Settings()
