"""Marketplace credentials: env vars `ORDERPULSE_<CHANNEL>_<FIELD>` first, else the sandbox's
`sandbox.json`. Secret fields come back as pydantic `SecretStr`, so a credentials dict can be
logged, repr'd or put in an exception without leaking anything."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

# Fields each platform needs (the sandbox.json shape); refresh tokens are optional: without one a
# token expiry is a clear failure instead of a silent refresh.
REQUIRED: dict[str, tuple[str, ...]] = {
    "taobao": ("base_url", "app_key", "app_secret", "session"),
    "jd": ("base_url", "app_key", "app_secret", "access_token"),
    "douyin": ("base_url", "app_key", "app_secret", "access_token"),
    "pdd": ("base_url", "client_id", "client_secret", "access_token"),
    "kuaishou": ("base_url", "app_key", "app_secret", "sign_secret", "access_token"),
    "youzan": ("base_url", "client_id", "client_secret", "access_token"),
}
OPTIONAL: tuple[str, ...] = ("refresh_token",)
SECRET_FIELDS = frozenset(
    {"app_secret", "client_secret", "sign_secret", "session", "access_token", "refresh_token"}
)


class CredentialsError(ValueError):
    """Credentials for a channel are missing; the message names the env vars to set."""


def env_var(channel: str, field: str) -> str:
    return f"ORDERPULSE_{channel.upper()}_{field.upper()}"


def reveal(value: str | SecretStr) -> str:
    """The clear value of a (possibly secret) credential field, for signing only."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def load_credentials(
    channel: str,
    sandbox_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str | SecretStr]:
    """Credentials of `channel`: each field from its env var if set, else from `sandbox_file`.

    Secret fields are `SecretStr`; use `reveal()` where the clear value is needed.
    """
    if channel not in REQUIRED:
        raise CredentialsError(
            f"{channel!r} is not a marketplace channel (one of {', '.join(REQUIRED)})"
        )
    environ = os.environ if environ is None else environ
    fields = (*REQUIRED[channel], *OPTIONAL)
    sandbox = _sandbox_entry(channel, sandbox_file)
    creds: dict[str, str | SecretStr] = {}
    for field in fields:
        value = environ.get(env_var(channel, field)) or sandbox.get(field)
        if value in (None, ""):
            continue
        creds[field] = SecretStr(str(value)) if field in SECRET_FIELDS else str(value)
    missing = [f for f in REQUIRED[channel] if f not in creds]
    if missing:
        names = ", ".join(env_var(channel, f) for f in missing)
        where = (
            f"{sandbox_file} has no complete {channel!r} entry"
            if sandbox_file is not None and sandbox_file.exists()
            else f"no sandbox file at {sandbox_file}"
            if sandbox_file is not None
            else "no sandbox file given"
        )
        raise CredentialsError(
            f"{channel}: missing credentials {names}; set these env vars, or start the sandbox "
            f"(`orderpulse sandbox serve`) so it writes sandbox.json ({where})"
        )
    creds["base_url"] = reveal(creds["base_url"]).rstrip("/")
    return creds


def _sandbox_entry(channel: str, sandbox_file: Path | None) -> dict:
    if sandbox_file is None or not sandbox_file.exists():
        return {}
    try:
        document = json.loads(sandbox_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        where = f"{err.msg} at line {err.lineno}"
        raise CredentialsError(f"{sandbox_file}: not valid JSON ({where})") from None
    entry = (document.get("channels") or {}).get(channel) or {}
    return entry if isinstance(entry, dict) else {}
