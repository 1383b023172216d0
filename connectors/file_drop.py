"""Files dropped by people: the POS import template (config/templates/pos_orders.csv) or any
configured file source, as CSV or XLSX, loaded by hand (`orderpulse load-file PATH --source NAME`)
or by a sensor watching the source's drop folder (ORDERPULSE_HOME/drop/<source> by default).

A file's load is recorded in raw.loaded_files (path, size, mtime, content hash); loading a file
again is harmless (the raw upsert is idempotent and its rejects replace the previous ones).
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from connectors.channels_config import ChannelsFile, FileDropSettings, load_channels
from connectors.csv_orders import FileLoadReport, load_file_bytes, loaded_files
from connectors.raw_schema import ensure_raw_tables
from kernel.settings import Settings, get_settings

__all__ = [
    "DroppedFile",
    "FileLoadReport",
    "drop_folder",
    "load_drop_folder",
    "load_file",
    "pending_files",
    "scan_drop_folder",
]


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    size: int
    mtime: datetime

    @property
    def signature(self) -> str:
        """Changes whenever the file's size or mtime does (a sensor's run key)."""
        return f"{self.path}:{self.size}:{self.mtime.timestamp():.0f}"


def drop_folder(
    source: str, *, channels: ChannelsFile | None = None, settings: Settings | None = None
) -> Path:
    """The folder `source`'s files are dropped into (created if missing)."""
    cfg = (channels or load_channels()).file_source(source)
    drop = cfg.file_drop or FileDropSettings()
    folder = Path(drop.folder or f"drop/{source}")
    if not folder.is_absolute():
        folder = (settings or get_settings()).home_dir / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def scan_drop_folder(
    folder: Path | str, patterns: tuple[str, ...] | list[str] = ("*.csv", "*.xlsx")
) -> list[DroppedFile]:
    """Files in `folder` (not below it) matching `patterns`, oldest first. Hidden files and
    office lock files (`~$…`, `.~lock…`) are ignored: they are not finished uploads."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        name = path.name
        if name.startswith((".", "~$")) or not path.is_file():
            continue
        if not any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns):
            continue
        st = path.stat()
        out.append(DroppedFile(path, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
    return sorted(out, key=lambda f: (f.mtime, f.path.name))


def pending_files(
    conn: psycopg.Connection,
    source: str,
    *,
    folder: Path | None = None,
    channels: ChannelsFile | None = None,
) -> list[DroppedFile]:
    """Dropped files of `source` not yet loaded in their current size and mtime."""
    channels = channels or load_channels()
    cfg = channels.file_source(source)
    folder = folder or drop_folder(source, channels=channels)
    ensure_raw_tables(conn, [source])
    known = loaded_files(conn, source)
    patterns = (cfg.file_drop or FileDropSettings()).patterns
    out = []
    for f in scan_drop_folder(folder, patterns):
        before = known.get(str(f.path.resolve()))
        if before is None or before.size != f.size or before.mtime != f.mtime:
            out.append(f)
    return out


def load_file(
    conn: psycopg.Connection,
    path: Path | str,
    source: str,
    *,
    run_id: str | None = None,
    channels: ChannelsFile | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FileLoadReport:
    """Load one CSV/XLSX file of the configured file source `source` into raw.<source>_orders.
    Returns a printable report (rows loaded, rows rejected with line numbers and reasons); a
    file that cannot be read, or whose load fails unexpectedly, gives a `failed` report and
    loads nothing (its transaction rolls back), so that the next file still loads."""
    cfg = (channels or load_channels()).file_source(source)
    path = Path(path).resolve()
    try:
        data = path.read_bytes()
        st = path.stat()
    except OSError as err:
        return FileLoadReport(source, str(path), "failed", error=f"cannot read the file: {err}")
    replace_missing = cfg.sftp.replace_missing if cfg.sftp is not None else False
    return load_file_bytes(
        conn, data, source=source, fmt=cfg.file_format, path=str(path),
        mtime=datetime.fromtimestamp(st.st_mtime, UTC),
        content_hash=hashlib.sha256(data).hexdigest(), run_id=run_id,
        replace_missing=replace_missing, on_chunk=on_chunk,
    )  # fmt: skip


def load_drop_folder(
    conn: psycopg.Connection,
    source: str,
    *,
    folder: Path | None = None,
    run_id: str | None = None,
    channels: ChannelsFile | None = None,
) -> list[FileLoadReport]:
    """Load every pending file of `source`'s drop folder; with `file_drop.move_to` set, move
    each loaded file into that subfolder. One unreadable file does not stop the others."""
    channels = channels or load_channels()
    cfg = channels.file_source(source)
    folder = folder or drop_folder(source, channels=channels)
    move_to = (cfg.file_drop or FileDropSettings()).move_to
    reports = []
    for dropped in pending_files(conn, source, folder=folder, channels=channels):
        report = load_file(conn, dropped.path, source, run_id=run_id, channels=channels)
        reports.append(report)
        if report.ok and move_to:
            target = folder / move_to
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(dropped.path, target / dropped.path.name)
    return reports
