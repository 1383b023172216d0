"""`config/channels.yaml`: which channels exist, how and how often they are ingested.

It is the one channel registry: every channel list in `connectors/` (the marketplaces, their
credential fields, the webhook routes) derives from it. `load_channels()` parses it once per
process; `load_channels(path)` reads another file (tests)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel.config import CONFIG_DIR, load_yaml_model

# The normalised keys a file source's columns map onto (they land in the raw payload next to the
# original headers). Item-level fields go into the payload's `items` list.
ORDER_FIELDS = (
    "platform_order_no", "shop_id", "buyer_id", "buyer_nick", "buyer_ip",
    "receiver_name", "receiver_phone", "receiver_province", "receiver_city",
    "receiver_district", "receiver_address", "country",
    "freight", "shop_discount", "platform_discount", "discount_amount", "paid_amount",
    "status", "refund_status", "buyer_note", "seller_note", "carrier", "tracking_no",
    "created_at", "paid_at", "shipped_at", "delivered_at", "closed_at", "modified_at",
)  # fmt: skip
ITEM_FIELDS = ("sku", "title", "qty", "price")
DATE_FIELDS = ("created_at", "paid_at", "shipped_at", "delivered_at", "closed_at", "modified_at")
AMOUNT_FIELDS = (
    "freight", "shop_discount", "platform_discount", "discount_amount", "paid_amount", "price",
)  # fmt: skip
_SQL_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# a credential field becomes part of an env var name (ORDERPULSE_<CHANNEL>_<FIELD>)
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def sql_identifier(value: str, *, dotted: bool = False) -> str:
    """`value` if it is a plain SQL identifier (or `schema.name` when `dotted`), else ValueError."""
    parts = value.split(".") if dotted else [value]
    if len(parts) > 2 or not all(_SQL_IDENT.match(p) for p in parts):
        raise ValueError(
            f"{value!r} is not a plain SQL identifier (letters, digits, _; "
            f"{'optionally schema.name' if dotted else 'no dots'})"
        )
    return value


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from err
    return value


class FileFormat(BaseModel):
    """How one source's CSV/XLSX order files look: header -> normalised key, times, encoding."""

    model_config = ConfigDict(extra="forbid")
    columns: dict[str, str] = Field(description="file header -> normalised key")
    timezone: str = "Asia/Shanghai"
    date_formats: list[str] = Field(
        default_factory=lambda: [
            "%Y/%m/%d %H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%Y/%m/%d %H:%M",
            "%Y-%m-%d %H:%M",
            "%Y/%m/%d",
            "%Y-%m-%d",
            "%Y%m%d%H%M%S",
        ],  # fmt: skip
        description="tried in order; ISO 8601 with an offset is always accepted",
    )
    encoding: str | None = Field(None, description="force a codec; unset = detect")
    delimiter: str = Field(",", min_length=1, max_length=1)
    sheet: str | None = Field(None, description="XLSX sheet; unset = the first")
    required: list[str] = Field(
        default_factory=lambda: ["platform_order_no", "created_at", "sku", "qty", "price"],
        description="normalised keys a row must have (blank = rejected)",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _check_columns(self) -> FileFormat:
        known = set(ORDER_FIELDS) | set(ITEM_FIELDS)
        for header, key in self.columns.items():
            if key not in known:
                raise ValueError(
                    f"columns.{header}: {key!r} is not a normalised key (one of "
                    f"{', '.join(sorted(known))})"
                )
        mapped = list(self.columns.values())
        if len(set(mapped)) != len(mapped):
            raise ValueError("columns: two headers map to the same normalised key")
        if "platform_order_no" not in mapped:
            raise ValueError("columns: no header maps to platform_order_no (the order number)")
        missing = [k for k in self.required if k not in mapped]
        if missing:
            raise ValueError(f"required: {missing} are not mapped by any column")
        return self

    def header_of(self, key: str) -> str | None:
        return next((h for h, k in self.columns.items() if k == key), None)


class SftpSettings(BaseModel):
    """Where a source's files wait on its SFTP server (credentials come from env/sandbox.json)."""

    model_config = ConfigDict(extra="forbid")
    directory: str | None = Field(None, description="unset = the sandbox's directory, else /")
    pattern: str = Field(r"order_\d{8}\.csv", description="regex a file name must fully match")
    move_to: str | None = Field(None, description="move loaded files here; unset = leave them")
    replace_missing: bool = Field(
        True,
        description="a corrected file removes the orders its previous version had and it lacks",
    )
    timeout_seconds: float = Field(15.0, gt=0)

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from err
        return value


class DbBridgeSettings(BaseModel):
    """A read-only SQL view (or query) read incrementally by an updated-at column."""

    model_config = ConfigDict(extra="forbid")
    view: str | None = Field(None, description="view or table, optionally schema.name")
    query: str | None = Field(None, description="a SELECT used instead of a view")
    updated_at_column: str = "updated_at"
    key_column: str
    chunk_size: int = Field(1000, ge=1, le=100_000)
    timezone: str = Field("Asia/Shanghai", description="zone of timestamps without an offset")
    json_columns: list[str] = Field(default_factory=list, description="text holding JSON")
    columns: dict[str, str] = Field(
        default_factory=dict, description="source column -> normalised key added to the payload"
    )
    items_column: str | None = Field(None, description="column holding the item list")
    item_columns: dict[str, str] = Field(
        default_factory=dict, description="item field -> normalised item key"
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("view")
    @classmethod
    def _view(cls, value: str | None) -> str | None:
        return None if value is None else sql_identifier(value, dotted=True)

    @field_validator("updated_at_column", "key_column")
    @classmethod
    def _column(cls, value: str) -> str:
        return sql_identifier(value)

    @model_validator(mode="after")
    def _one_source(self) -> DbBridgeSettings:
        if (self.view is None) == (self.query is None):
            raise ValueError("set exactly one of view or query")
        return self


class FileDropSettings(BaseModel):
    """A folder where people drop files (the POS import template) for a sensor to load."""

    model_config = ConfigDict(extra="forbid")
    folder: str | None = Field(
        None, description="relative to ORDERPULSE_HOME; unset = drop/<source>"
    )
    patterns: list[str] = Field(default_factory=lambda: ["*.csv", "*.xlsx"])
    move_to: str | None = Field(None, description="subfolder for loaded files; unset = leave them")


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
    sftp: SftpSettings | None = None
    db_bridge: DbBridgeSettings | None = None
    file_drop: FileDropSettings | None = None
    file_format: FileFormat | None = None
    credentials: list[str] | None = Field(
        None,
        description="marketplace: the credential fields its API needs (base_url first); each "
        "from env ORDERPULSE_<CHANNEL>_<FIELD>, else the sandbox's sandbox.json",
    )

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @field_validator("credentials")
    @classmethod
    def _credential_fields(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        bad = [f for f in value if not _FIELD_NAME.match(f)]
        if bad:
            raise ValueError(f"{bad} are not field names (lower-case letters, digits, _)")
        if len(set(value)) != len(value):
            raise ValueError("a credential field is listed twice")
        if "base_url" not in value:
            raise ValueError("base_url (where the platform's API is) must be listed")
        return value

    @model_validator(mode="after")
    def _settings_for_kind(self) -> ChannelConfig:
        if self.kind == "sftp":
            self.sftp = self.sftp or SftpSettings()
            if self.file_format is None:
                raise ValueError("kind sftp needs file_format (the column map of its files)")
        if self.kind == "file_drop":
            self.file_drop = self.file_drop or FileDropSettings()
            if self.file_format is None:
                raise ValueError("kind file_drop needs file_format (the column map of its files)")
        if self.kind == "db_bridge" and self.db_bridge is None:
            raise ValueError("kind db_bridge needs db_bridge (view, updated_at_column, key_column)")
        if self.kind == "marketplace" and not self.credentials:
            raise ValueError(
                "kind marketplace needs credentials (the fields its API needs, e.g. "
                "[base_url, app_key, app_secret, access_token])"
            )
        if self.kind != "marketplace" and self.credentials is not None:
            raise ValueError(f"credentials is for kind marketplace only (this is {self.kind})")
        return self


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

    def file_source(self, source: str) -> ChannelConfig:
        """A source whose files can be loaded (kind sftp or file_drop), or a ValueError."""
        cfg = self.channels.get(source)
        if cfg is None or cfg.file_format is None:
            known = [k for k, v in self.channels.items() if v.file_format is not None]
            raise ValueError(
                f"{source!r} is not a file source in config/channels.yaml (one of: "
                f"{', '.join(known) or 'none configured'})"
            )
        return cfg

    def of_kind(self, kind: str, *, include_disabled: bool = False) -> dict[str, ChannelConfig]:
        return {
            k: v
            for k, v in self.channels.items()
            if v.kind == kind and (v.enabled or include_disabled)
        }

    def marketplace(self, channel: str) -> ChannelConfig:
        """A configured marketplace (enabled or not), or a ValueError naming the known ones."""
        cfg = self.channels.get(channel)
        if cfg is None or cfg.kind != "marketplace":
            known = self.of_kind("marketplace", include_disabled=True)
            raise ValueError(
                f"{channel!r} is not a marketplace in config/channels.yaml (one of "
                f"{', '.join(known) or 'none configured'})"
            )
        return cfg


CHANNELS_FILE = CONFIG_DIR / "channels.yaml"


def load_channels(path: Path | str | None = None) -> ChannelsFile:
    """The channel registry. Without `path`, config/channels.yaml parsed once per process (a
    shared instance: do not mutate it, `model_copy` instead); with `path`, that file, read now."""
    if path is None:
        return _registry()
    return load_yaml_model(path, ChannelsFile)


@functools.cache
def _registry() -> ChannelsFile:
    # importing the definitions asks for the registry ~8 times; parse and validate it once
    return load_yaml_model(CHANNELS_FILE, ChannelsFile)


def marketplaces() -> tuple[str, ...]:
    """The enabled marketplaces of config/channels.yaml, in file order."""
    return tuple(load_channels().of_kind("marketplace"))
