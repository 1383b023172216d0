"""What a verified push message is, and the parsing helpers the platforms' verifiers share.

Each marketplace module (`connectors.<channel>`) verifies its own pushes with
`verify_<channel>(headers, body, creds) -> Verified`, next to the request signing it reuses;
`verifier(channel)` finds it. A bad signature raises `Rejected(401, ...)`; nothing here stores
anything (`connectors.webhook_store`) or serves HTTP (`connectors.webhook_app`).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from pydantic import SecretStr

from connectors.channels_config import load_channels
from kernel.timezones import BEIJING

Credentials = Mapping[str, Any]


class Rejected(Exception):
    """A push request refused: 401 (signature) or 403 (stale or replayed)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Message:
    """One verified change message."""

    message_id: str
    topic: str | None
    order_nos: list[str]
    sent_at: datetime | None
    payload: dict[str, Any]


@dataclass
class Verified:
    messages: list[Message]
    reply: dict[str, Any] = field(default_factory=lambda: {"success": True})


Verifier = Callable[[Mapping[str, str], bytes, Credentials], Verified]


def verifier(channel: str) -> Verifier:
    """`connectors.<channel>.verify_<channel>` of a marketplace in config/channels.yaml."""
    load_channels().marketplace(channel)  # ValueError naming the configured marketplaces
    module = importlib.import_module(f"connectors.{channel}")
    return getattr(module, f"verify_{channel}")


def secret(creds: Credentials, name: str) -> str:
    value = creds.get(name)
    if value is None:
        raise Rejected(401, f"no {name} configured for this channel")
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def md5_hex(text: bytes) -> str:
    return hashlib.md5(text).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """A signature matches (case-insensitive hex, constant time)."""
    return given is not None and hmac.compare_digest(given.strip().lower(), expected.lower())


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Rejected(401, "body is not JSON") from None


def as_time(value: Any) -> datetime | None:
    """Unix seconds / ms, ISO 8601 or Beijing `yyyy-MM-dd HH:mm:ss`."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def order_nos(value: Any) -> list[str]:
    """The order numbers a message names (one, a list, or none)."""
    if value in (None, ""):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise Rejected(401, "body is not a form") from None


def form_json(fields: Mapping[str, str], key: str) -> dict[str, Any]:
    """A form field holding a JSON object ({} when absent or not an object)."""
    try:
        content = json.loads(fields.get(key) or "{}")
    except ValueError:
        raise Rejected(401, f"{key} is not JSON") from None
    return content if isinstance(content, dict) else {}
