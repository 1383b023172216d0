"""What a verified push message is, and the parsing helpers the platforms' verifiers share.

Each marketplace module (`connectors.<channel>`) verifies its own pushes with
`verify_<channel>(headers, body, creds) -> Verified`, next to the request signing it reuses;
`verifier(channel)` finds it. A bad signature raises `Rejected(401, ...)`, a message that cannot
be read (not UTF-8, not JSON or not a form, a field of the wrong type) `Rejected(400, ...)`;
nothing here stores anything (`connectors.webhook_store`) or serves HTTP
(`connectors.webhook_app`).

A verifier leaves `message_id` None when the message carries no id and `sent_at` None when its
send time is missing or unreadable: the receiver derives a stable id for the first
(`derived_message_id`) and refuses the second.
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
    """A push request refused: 400 (malformed), 401 (signature), 403 (stale or replayed), 413
    (too large) or 503 (the event store is unreachable: the platform should retry)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Message:
    """One verified change message."""

    message_id: str | None  # None: the message carries no id (the receiver derives one)
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


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """A signature matches (case-insensitive hex, constant time)."""
    return given is not None and hmac.compare_digest(given.strip().lower(), expected.lower())


def text(body: bytes) -> str:
    """The body as text (every platform sends UTF-8)."""
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise Rejected(400, "body is not UTF-8") from None


def json_body(body: bytes) -> Any:
    try:
        return json.loads(text(body))
    except ValueError:
        raise Rejected(400, "body is not JSON") from None


def json_object(value: Any, what: str) -> dict[str, Any]:
    """`value` (an object, or a string holding one) as a dict; 400 naming `what` otherwise."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Rejected(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Rejected(400, f"{what} is not a JSON object")
    return value


def optional_text(value: Any) -> str | None:
    """A scalar field as text; None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        raise Rejected(400, "an id or topic field is not a scalar")
    return str(value)


def as_time(value: Any) -> datetime | None:
    """Unix seconds / ms, ISO 8601 or Beijing `yyyy-MM-dd HH:mm:ss`; None when missing or
    unreadable (the receiver refuses such a message: no age check is ever skipped)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        parsed = datetime.fromisoformat(str(value).strip())
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def derived_message_id(channel: str, payload: Any) -> str:
    """A stable id for a message that carries none: the platform and a hash of the signed
    content, so a replay of it collides with itself and with nothing else."""
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{channel}\n{canonical}".encode()).hexdigest()
    return f"sha256:{digest}"


def order_nos(value: Any) -> list[str]:
    """The order numbers a message names (one, a list, or none)."""
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, dict | list) for v in values):
        raise Rejected(400, "an order number is not a scalar")
    return [str(v) for v in values if v is not None and v != ""]


def form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(text(body), keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise Rejected(400, "body is not a form") from None


def form_json(fields: Mapping[str, str], key: str) -> dict[str, Any]:
    """A form field holding a JSON object ({} when absent; 400 when not a JSON object)."""
    return json_object(fields.get(key) or "{}", key)
