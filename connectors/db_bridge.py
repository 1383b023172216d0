"""The H5 mall / legacy ERP: a read-only SQL view (or query) read through SQLAlchemy from any
URL (PostgreSQL, MySQL, SQL Server, SQLite), incrementally by an updated-at column.

- Each run starts at the source's cursor (raw.ingest_cursors) minus the channel's lag, or at the
  beginning on the first run, and walks the rows in keyset order (updated_at, key) in chunks of
  `chunk_size`; each chunk is upserted by the raw loader and moves the cursor in the same
  transaction, so a run that dies half-way resumes where it stopped.
- Only parameterised SQL: values are bound; the view, updated-at and key column names come from
  config and are validated as plain identifiers (then quoted by the dialect).
- The key of the next chunk is the last row's own values as the driver returned them, so
  comparisons stay exact whatever type the source uses for its timestamps (SQLite keeps text).
- Payload = the row (JSON-safe: decimals as strings, times as ISO 8601 with offset), columns in
  `json_columns` parsed from JSON text, plus the normalised keys of `columns`/`item_columns`
  added next to the originals. Timestamps without an offset are read in `timezone`.
- A row with no key or no usable updated-at value goes to raw.rejected_rows instead.
- URL: env var ORDERPULSE_<SOURCE>_DB_URL, else the sandbox's sandbox.json `erp` entry
  (`connectors.credentials.lookup_credentials`; `CredentialsError` when neither is set).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa

from connectors.channels_config import ChannelsFile, DbBridgeSettings, load_channels
from connectors.credentials import lookup_credentials, reveal
from connectors.raw_loader import CursorUpdate, LoadStats, RawOrder, load_orders
from connectors.raw_schema import ensure_raw_tables
from kernel.settings import get_settings


class DbBridgeError(RuntimeError):
    """The source database cannot be read or is misconfigured; the message says what to do."""


@dataclass
class DbPullReport:
    source: str
    since: datetime | None
    rows: int = 0
    chunks: int = 0
    rejected: int = 0
    stats: LoadStats = field(default_factory=LoadStats)
    cursor: datetime | None = None

    def as_metadata(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "rows": self.rows,
            "chunks": self.chunks,
            "rejected": self.rejected,
            **self.stats.as_dict(),
            "cursor": self.cursor.isoformat() if self.cursor else None,
        }


def resolve_url(
    source: str,
    sandbox_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The source database URL: ORDERPULSE_<SOURCE>_DB_URL, else sandbox.json's `erp.url`
    (`CredentialsError` when neither is set)."""
    found = lookup_credentials(
        source,
        ("db_url",),
        sandbox_file=sandbox_file or get_settings().sandbox_file,
        sandbox_entry=("erp",),
        secret=("db_url",),  # the URL may carry a password
        sandbox_keys={"db_url": ("url",)},
        environ=environ,
    )
    return reveal(found["db_url"])


def _json_safe(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):  # in the source's zone: independent of the session's
        return (value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, tz) for v in value]
    return value


def _as_datetime(value: Any, tz: ZoneInfo) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    return None


class _Reader:
    """Builds the keyset-paged SELECTs of one configured view or query."""

    def __init__(self, engine: sa.Engine, cfg: DbBridgeSettings):
        self.engine, self.cfg = engine, cfg
        self.tz = ZoneInfo(cfg.timezone)
        if cfg.view:
            schema, _, name = cfg.view.rpartition(".")
            source = sa.table(name, schema=schema or None)
            self.updated = sa.column(cfg.updated_at_column)
            self.key = sa.column(cfg.key_column)
        else:
            source = (
                sa.text(cfg.query)
                .columns(sa.column(cfg.updated_at_column), sa.column(cfg.key_column))
                .subquery("src")
            )
            self.updated = source.c[cfg.updated_at_column]
            self.key = source.c[cfg.key_column]
        self.base = sa.select(sa.literal_column("*")).select_from(source)

    def since_param(self, since: datetime) -> Any:
        local = since.astimezone(self.tz)
        if self.engine.dialect.name == "postgresql":
            return since
        if self.engine.dialect.name == "sqlite":  # text timestamps compare as text
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return local.replace(tzinfo=None)

    def chunk(self, since: datetime | None, after: tuple[Any, Any] | None) -> list[dict]:
        stmt = self.base
        if after is not None:
            last_updated, last_key = after
            stmt = stmt.where(
                sa.or_(
                    self.updated > sa.bindparam("last_updated", last_updated),
                    sa.and_(
                        self.updated == sa.bindparam("same_updated", last_updated),
                        self.key > sa.bindparam("last_key", last_key),
                    ),
                )
            )
        elif since is not None:
            stmt = stmt.where(self.updated >= sa.bindparam("since", self.since_param(since)))
        # NULLs would break the keyset comparison: those rows are reported by `invalid`
        stmt = stmt.where(self.updated.is_not(None), self.key.is_not(None))
        stmt = stmt.order_by(self.updated, self.key).limit(self.cfg.chunk_size)
        return self._fetch(stmt)

    def invalid(self, since: datetime | None) -> list[dict]:
        """Rows without a key or an updated-at value (in the window), at most one chunk."""
        stmt = self.base.where(sa.or_(self.key.is_(None), self.updated.is_(None)))
        if since is not None:
            stmt = stmt.where(
                sa.or_(
                    self.updated.is_(None),
                    self.updated >= sa.bindparam("since", self.since_param(since)),
                )
            )
        return self._fetch(stmt.limit(self.cfg.chunk_size))

    def _fetch(self, stmt: sa.Select) -> list[dict]:
        with self.engine.connect() as src:
            return [dict(row) for row in src.execute(stmt).mappings()]


def _to_payload(row: dict, cfg: DbBridgeSettings, tz: ZoneInfo) -> dict:
    payload = {k: _json_safe(v, tz) for k, v in row.items()}
    for column in cfg.json_columns:
        value = payload.get(column)
        if isinstance(value, str) and value.strip():
            # text that is not JSON stays text: the staging model will see it
            with contextlib.suppress(json.JSONDecodeError):
                payload[column] = json.loads(value)
    for column, key in cfg.columns.items():
        if column in payload:
            payload[key] = payload[column]
    items = payload.get(cfg.items_column) if cfg.items_column else None
    if isinstance(items, list) and cfg.item_columns:
        for item in items:
            if isinstance(item, dict):
                for column, key in cfg.item_columns.items():
                    if column in item:
                        item[key] = item[column]
    return payload


def _reject(
    conn: psycopg.Connection,
    source: str,
    what: str,
    rows: list[tuple[dict, str]],
    run_id: str | None,
) -> int:
    texts = [json.dumps(row, ensure_ascii=False, default=str, sort_keys=True) for row, _ in rows]
    with conn.transaction():
        # the lag overlap reads a bad row again: keep one entry per row version
        conn.execute(
            "delete from raw.rejected_rows where source = %s and file = %s and raw_text = any(%s)",
            [source, what, texts],
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy raw.rejected_rows (source, file, line_no, raw_text, reason, run_id) "
                "from stdin"
            ) as copy,
        ):
            for text, (_, reason) in zip(texts, rows, strict=True):
                copy.write_row((source, what, None, text, reason, run_id))
    return len(rows)


def _guarded(
    read: Callable[..., list[dict]], *args: Any, source: str, what: str, engine: sa.Engine
) -> list[dict]:
    try:
        return read(*args)
    except sa.exc.SQLAlchemyError as err:
        # the URL is shown redacted; the driver's first line says what went wrong
        detail = getattr(err, "orig", None) or err
        raise DbBridgeError(
            f"{source}: reading {what} from {engine.url!r} failed: "
            f"{type(detail).__name__}: {str(detail).splitlines()[0]}"
        ) from None


def pull(
    conn: psycopg.Connection,
    source: str,
    url_or_engine: str | sa.Engine,
    cfg: DbBridgeSettings,
    *,
    channel: str | None = None,
    lag: timedelta = timedelta(minutes=5),
    since: datetime | None = None,
    run_id: str | None = None,
) -> DbPullReport:
    """Read the rows of `cfg.view`/`cfg.query` changed since the cursor (or `since`) into
    raw.<channel>_orders, chunk by chunk, moving the `source` cursor with each chunk."""
    channel = channel or source
    ensure_raw_tables(conn, [channel])
    if since is None:
        with conn.transaction():
            row = conn.execute(
                "select cursor_value from raw.ingest_cursors where source = %s", [source]
            ).fetchone()
        since = row[0] - lag if row else None
    engine = sa.create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    reader = _Reader(engine, cfg)
    what = cfg.view or "query"
    report = DbPullReport(source, since)
    after: tuple[Any, Any] | None = None
    try:
        while True:
            rows = _guarded(reader.chunk, since, after, source=source, what=what, engine=engine)
            if not rows:
                break
            good, bad = [], []
            for row in rows:
                key = row.get(cfg.key_column)
                modified = _as_datetime(row.get(cfg.updated_at_column), reader.tz)
                if str(key).strip() == "":
                    bad.append((row, f"no {cfg.key_column}"))
                elif modified is None:
                    value = row.get(cfg.updated_at_column)
                    bad.append((row, f"unusable {cfg.updated_at_column}: {value!r}"))
                else:
                    good.append(RawOrder(str(key), modified, _to_payload(row, cfg, reader.tz)))
            if bad:
                report.rejected += _reject(conn, source, what, bad, run_id)
            cursor = None
            if good:
                top = max(o.modified_at for o in good)
                cursor = CursorUpdate(source, top, {"view": what, "rows": len(good)})
                report.cursor = max(report.cursor or top, top)
            report.stats += load_orders(conn, channel, good, run_id=run_id, cursor=cursor)
            report.rows += len(rows)
            report.chunks += 1
            last = rows[-1]
            after = (last[cfg.updated_at_column], last[cfg.key_column])
            if len(rows) < cfg.chunk_size:
                break
        invalid = [
            (row, f"no {cfg.key_column}" if row.get(cfg.key_column) is None
             else f"no {cfg.updated_at_column}")
            for row in _guarded(reader.invalid, since, source=source, what=what, engine=engine)
        ]  # fmt: skip
        if invalid:
            report.rejected += _reject(conn, source, what, invalid, run_id)
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()
    return report


def pull_source(
    conn: psycopg.Connection,
    source: str,
    *,
    channels: ChannelsFile | None = None,
    url: str | None = None,
    run_id: str | None = None,
) -> DbPullReport:
    """`pull` with the source's settings from config/channels.yaml and its URL resolved."""
    cfg = (channels or load_channels()).channels.get(source)
    if cfg is None or cfg.db_bridge is None:
        raise DbBridgeError(f"{source!r} is not a db_bridge source in config/channels.yaml")
    return pull(
        conn, source, url or resolve_url(source), cfg.db_bridge,
        lag=timedelta(minutes=cfg.lag_minutes or 0), run_id=run_id,
    )  # fmt: skip
