"""The demo's reset: everything the previous world left, said before it is removed.

A world lives in the warehouse schemas (raw rows, ingest cursors, loaded-file records, models,
decisions) and in files under ORDERPULSE_HOME: the POS drop folder, the sandbox's SFTP exports
and the alert outbox. Leaving any of it makes the next world's counts wrong (an old POS file is
loaded again beside the new one)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from kernel.database import SCHEMAS, PgConn, redact, reset_warehouse

TABLES_SQL = """
select table_schema, count(*)
from information_schema.tables
where table_schema = any(%s)
group by table_schema
"""


FOLDER_ROLES = {"drop": "POS drop folder", "sftp": "SFTP exports", "outbox": "alert emails"}


@dataclass
class ResetPlan:
    """What a reset would remove: tables per schema, ingest cursors, files per folder."""

    url: str
    tables: dict[str, int]
    cursors: int
    folders: dict[Path, int] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not any(self.tables.values()) and not any(self.folders.values())

    def describe(self) -> list[str]:
        tables = ", ".join(f"{s} ({self.tables.get(s, 0)} tables)" for s in SCHEMAS)
        lines = [
            f"warehouse {redact(self.url)}: schemas {tables}, "
            f"with {self.cursors} ingest cursors and the loaded-file records"
        ]
        for folder, files in self.folders.items():
            lines.append(f"{folder}: {files} files ({FOLDER_ROLES.get(folder.name, 'files')})")
        return lines


def world_folders(home: Path) -> list[Path]:
    """The folders under ORDERPULSE_HOME that hold a sandbox world's files."""
    return [home / "drop", home / "sandbox" / "sftp", home / "outbox"]


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def plan_reset(conn: PgConn, home: Path) -> ResetPlan:
    with psycopg.connect(conn.url()) as db:
        tables = dict(db.execute(TABLES_SQL, [list(SCHEMAS)]).fetchall())
        has_cursors = db.execute("select to_regclass('raw.ingest_cursors')").fetchone()[0]
        cursors = (
            db.execute("select count(*) from raw.ingest_cursors").fetchone()[0]
            if has_cursors
            else 0
        )
    folders = {f: _count_files(f) for f in world_folders(home)}
    return ResetPlan(conn.url(), tables, cursors, folders)


def apply_reset(conn: PgConn, plan: ResetPlan) -> None:
    """Drop and recreate the schemas, then remove the world's folders (the sandbox writes its
    SFTP keys and exports again when it starts)."""
    reset_warehouse(conn)
    for folder in plan.folders:
        shutil.rmtree(folder, ignore_errors=True)
