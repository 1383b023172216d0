"""Process-wide settings read from the environment (and `.env`)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where OrderPulse keeps its local state and which PostgreSQL it uses."""

    model_config = SettingsConfigDict(env_prefix="ORDERPULSE_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".orderpulse"), description="All local state lives here.")
    pg_url: str | None = Field(default=None, description="External PostgreSQL; unset = embedded.")

    # Alert e-mail (quality/mailer.py); no host = the message is written to `outbox/` instead.
    smtp_host: str | None = Field(default=None, description="SMTP server; unset = outbox files.")
    smtp_port: int = Field(default=587, description="465 = SMTP over TLS, else plain/STARTTLS.")
    smtp_starttls: bool = Field(default=True, description="Upgrade with STARTTLS before login.")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(default="OrderPulse <orderpulse@localhost>", description="From.")
    smtp_timeout_seconds: float = 10.0
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle for a private CA.")
    # Urgent alerts also go to a DingTalk-style group robot (signed webhook).
    robot_webhook_url: str | None = None
    robot_secret: SecretStr | None = None

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
