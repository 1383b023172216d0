"""Credentials and endpoints of every source, looked up one way: env var
`ORDERPULSE_<SOURCE>_<FIELD>` first, else the source's entry in the sandbox's `sandbox.json`.

`lookup_credentials` is that one lookup (marketplaces, SFTP servers, the ERP/H5 mall database,
the merchant systems' API all use it) and `CredentialsError` its one error, whose message names
the env vars to set. Secret fields come back as pydantic `SecretStr`, so a credentials dict can
be logged, repr'd or put in an exception without leaking anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.channels_config import load_channels

# Marketplace fields that are not secret; every other configured field is (a new field added
# to config/channels.yaml is hidden from logs unless listed here).
PUBLIC_FIELDS = frozenset({"base_url", "app_key", "client_id"})
# Optional for every marketplace: without a refresh token a token expiry is a clear failure
# instead of a silent refresh.
OPTIONAL: tuple[str, ...] = ("refresh_token",)


class CredentialsError(ValueError):
    """A source's credentials or endpoint are missing; the message names the env vars to set."""


def env_var(source: str, field: str) -> str:
    return f"ORDERPULSE_{source.upper()}_{field.upper()}"


def reveal(value: str | SecretStr) -> str:
    """The clear value of a (possibly secret) credential field, for signing only."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def lookup_credentials(
    source: str,
    required: Sequence[str],
    *,
    optional: Sequence[str] = (),
    secret: Collection[str] = (),
    sandbox_file: Path | None = None,
    sandbox_entry: Sequence[str] = (),
    sandbox_keys: Mapping[str, Sequence[str]] | None = None,
    env_prefix: str | None = None,
    env_decides: str | None = None,
    defaults: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str | SecretStr]:
    """Each field of `source` from env `<env_prefix><FIELD>` (default `ORDERPULSE_<SOURCE>_`),
    else from the sandbox.json entry at `sandbox_entry` (key path, e.g. ("channels", "jd")),
    else from `defaults`; fields in `secret` as `SecretStr`. Unset fields are left out.

    `sandbox_keys` maps a field to its key path inside the entry where the sandbox names it
    differently. With `env_decides` set, a source whose `<env_decides>` env var is set is a
    real one: all of it comes from env (and defaults), sandbox.json is not read, so a real
    server never mixes with sandbox values. A missing required field raises `CredentialsError`.
    """
    environ = os.environ if environ is None else environ
    prefix = env_prefix or env_var(source, "")
    use_sandbox = not (env_decides and environ.get(prefix + env_decides.upper()))
    entry = _sandbox_entry(sandbox_file, sandbox_entry) if use_sandbox else {}
    keys = sandbox_keys or {}
    found: dict[str, str | SecretStr] = {}
    for field in (*required, *optional):
        value: Any = environ.get(prefix + field.upper())
        if value in (None, ""):
            value = _dig(entry, keys.get(field, (field,)))
        if value in (None, "") and defaults:
            value = defaults.get(field)
        if value in (None, ""):
            continue
        found[field] = SecretStr(str(value)) if field in secret else str(value)
    missing = [f for f in required if f not in found]
    if missing:
        names = ", ".join(prefix + f.upper() for f in missing)
        raise CredentialsError(
            f"{source}: missing {names}; set these env vars, or start the sandbox "
            f"(`orderpulse sandbox serve`) so it writes sandbox.json "
            f"({_where(sandbox_file, sandbox_entry, use_sandbox)})"
        )
    return found


def _where(sandbox_file: Path | None, entry: Sequence[str], used: bool) -> str:
    if not used:
        return "not read: the env vars name a real server"
    if sandbox_file is None:
        return "no sandbox file given"
    if not sandbox_file.exists():
        return f"no sandbox file at {sandbox_file}"
    return f"{sandbox_file} has no complete {'.'.join(entry) or 'top-level'} entry"


def _dig(document: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _sandbox_entry(sandbox_file: Path | None, path: Sequence[str]) -> dict[str, Any]:
    if sandbox_file is None or not sandbox_file.is_file():
        return {}
    try:
        document = json.loads(sandbox_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        where = f"{err.msg} at line {err.lineno}"
        raise CredentialsError(f"{sandbox_file}: not valid JSON ({where})") from None
    entry = _dig(document, path)
    return entry if isinstance(entry, dict) else {}


# -- marketplaces -------------------------------------------------------------------------------


def required_fields(channel: str) -> tuple[str, ...]:
    """The credential fields a marketplace needs, from its entry in config/channels.yaml."""
    try:
        cfg = load_channels().marketplace(channel)
    except ValueError as err:
        raise CredentialsError(str(err)) from None
    return tuple(cfg.credentials or ())


def secret_fields() -> frozenset[str]:
    """Every marketplace credential field that is handled as a secret."""
    configured = {
        field
        for cfg in load_channels().of_kind("marketplace", include_disabled=True).values()
        for field in cfg.credentials or ()
    }
    return frozenset((configured | set(OPTIONAL)) - PUBLIC_FIELDS)


def load_credentials(
    channel: str,
    sandbox_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str | SecretStr]:
    """Credentials of marketplace `channel`: each field from its env var if set, else from
    `sandbox_file`'s `channels.<channel>` entry. Secret fields are `SecretStr`; use `reveal()`
    where the clear value is needed."""
    required = required_fields(channel)
    creds = lookup_credentials(
        channel,
        required,
        optional=OPTIONAL,
        secret=secret_fields(),
        sandbox_file=sandbox_file,
        sandbox_entry=("channels", channel),
        environ=environ,
    )
    creds["base_url"] = reveal(creds["base_url"]).rstrip("/")
    return creds
