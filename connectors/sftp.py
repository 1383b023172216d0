"""Regional platforms' daily exports on an SFTP server (paramiko): list, download, load.

- Host keys are checked against a known-hosts file with paramiko's RejectPolicy: an unknown or
  changed host key refuses the connection (`HostKeyRejected`), never auto-accepted.
- Credentials (`connectors.credentials.lookup_credentials`): env vars
  `ORDERPULSE_<SOURCE>_SFTP_HOST`, `_PORT` (22), `_USERNAME`, `_PASSWORD` and/or `_KEY_PATH`
  (+ `_KEY_PASSPHRASE`), `_KNOWN_HOSTS` (default ~/.ssh/known_hosts), `_DIRECTORY`; when
  `_HOST` is unset, the `sftp` entry of the sandbox's sandbox.json (`host`, `port`,
  `username`, `private_key_path`, `known_hosts_path`, optional `password`,
  `directories: {source: path}`). Missing credentials raise `CredentialsError`.
- What was loaded is kept in raw.loaded_files by (source, path) with size, mtime and a SHA-256 of
  the content. A file whose size and mtime match is not downloaded again; a file whose content
  hash matches (re-sent as is) loads nothing; new or changed content is loaded. A corrected file
  replaces its previous version: its orders are upserted and, with `sftp.replace_missing` (the
  default), orders that came from the previous version and are missing from the corrected one
  are deleted from raw (an order whose raw row came from a later file, or whose rows the new
  version names but rejects, is never touched). Its rejected rows replace the previous
  version's too.
- A file that cannot be read fails alone; the others still load. With `sftp.move_to` set, a
  loaded file is moved there on the server (its raw.loaded_files entry keeps the original path).
- A connection the server (or the network) drops while listing or downloading is reopened and
  the call repeated, `RECONNECTS` times at most in one sync; beyond that the sync stops with an
  `SftpError` naming the file. Nothing of a file is loaded before all its bytes arrived, so the
  files loaded before the drop stay loaded and the next run picks up the rest.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import paramiko
import psycopg
from pydantic import SecretStr
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from connectors.channels_config import ChannelConfig, ChannelsFile, load_channels
from connectors.credentials import CredentialsError, lookup_credentials, reveal
from connectors.csv_orders import (
    FileLoadReport,
    load_file_bytes,
    loaded_files,
    mark_unchanged,
)
from connectors.raw_schema import ensure_raw_tables
from kernel.settings import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")
RECONNECTS = 3  # per sync: a flapping link still fails the run instead of looping
_DROPPED = (OSError, EOFError, paramiko.SSHException)  # what a dead connection raises


class SftpError(RuntimeError):
    """The SFTP source cannot be reached or is misconfigured; the message says what to do."""


class HostKeyRejected(SftpError):
    """The server's host key is not in the known-hosts file (or differs from it)."""


@dataclass(frozen=True)
class SftpCredentials:
    host: str
    port: int
    username: str
    known_hosts_path: Path
    private_key_path: Path | None = None
    password: SecretStr | None = field(default=None, repr=False)
    key_passphrase: SecretStr | None = field(default=None, repr=False)
    directory: str | None = None


@dataclass(frozen=True)
class RemoteFile:
    path: str
    name: str
    size: int
    mtime: datetime

    @property
    def signature(self) -> str:
        """Changes whenever the file's size or mtime does (a sensor's run key)."""
        return f"{self.path}:{self.size}:{int(self.mtime.timestamp())}"


def env_prefix(source: str) -> str:
    return f"ORDERPULSE_{source.upper()}_SFTP_"


def resolve_credentials(
    source: str,
    sandbox_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> SftpCredentials:
    """Credentials of `source` from env vars (all of them once `_SFTP_HOST` is set), else from
    the sandbox's sandbox.json `sftp` entry; `CredentialsError` names what to set."""
    prefix = env_prefix(source)
    found = lookup_credentials(
        source,
        ("host", "username"),
        optional=(
            "port",
            "password",
            "key_path",
            "key_passphrase",
            "known_hosts",
            "directory",
        ),  # fmt: skip
        secret=("password", "key_passphrase"),
        sandbox_file=sandbox_file or get_settings().sandbox_file,
        sandbox_entry=("sftp",),
        sandbox_keys={
            "key_path": ("private_key_path",),
            "known_hosts": ("known_hosts_path",),
            "directory": ("directories", source),
        },
        env_prefix=prefix,
        env_decides="host",  # a real server never mixes with the sandbox's values
        defaults={"port": "22", "known_hosts": str(Path.home() / ".ssh" / "known_hosts")},
        environ=environ,
    )
    if "password" not in found and "key_path" not in found:
        raise CredentialsError(f"{source}: set {prefix}KEY_PATH or {prefix}PASSWORD to log in")
    key_path, password, passphrase = (
        found.get("key_path"), found.get("password"), found.get("key_passphrase"),
    )  # fmt: skip
    return SftpCredentials(
        host=reveal(found["host"]),
        port=int(reveal(found["port"])),
        username=reveal(found["username"]),
        known_hosts_path=Path(reveal(found["known_hosts"])).expanduser(),
        private_key_path=Path(reveal(key_path)).expanduser() if key_path else None,
        password=password if isinstance(password, SecretStr) else None,
        key_passphrase=passphrase if isinstance(passphrase, SecretStr) else None,
        directory=reveal(found["directory"]) if found.get("directory") else None,
    )


def credentials_from_info(info: Mapping, source: str) -> SftpCredentials:
    """Credentials from a sandbox `sftp` entry ({host, port, username, private_key_path,
    known_hosts_path, password?, directories})."""
    key = info.get("private_key_path")
    return SftpCredentials(
        host=info["host"],
        port=int(info["port"]),
        username=info["username"],
        known_hosts_path=Path(info["known_hosts_path"]),
        private_key_path=Path(key) if key else None,
        password=SecretStr(info["password"]) if info.get("password") else None,
        directory=(info.get("directories") or {}).get(source),
    )


def _load_key(creds: SftpCredentials) -> paramiko.PKey | None:
    if creds.private_key_path is None:
        return None
    passphrase = creds.key_passphrase.get_secret_value() if creds.key_passphrase else None
    try:
        return paramiko.PKey.from_path(creds.private_key_path, passphrase)
    except (OSError, paramiko.SSHException, ValueError) as err:
        raise SftpError(
            f"private key {creds.private_key_path} cannot be read: {type(err).__name__}"
        ) from err


@retry(
    retry=retry_if_exception_type((OSError, EOFError)),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.5, max=4),
    reraise=True,
)
def _connect(
    client: paramiko.SSHClient, creds: SftpCredentials, pkey: paramiko.PKey | None, timeout: float
) -> None:
    client.connect(
        creds.host,
        port=creds.port,
        username=creds.username,
        pkey=pkey,
        password=creds.password.get_secret_value() if creds.password else None,
        look_for_keys=False,
        allow_agent=False,
        timeout=timeout,
        banner_timeout=timeout,
        auth_timeout=timeout,
    )


@contextmanager
def open_sftp(creds: SftpCredentials, *, timeout: float = 15.0) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session on a connection whose host key is in `creds.known_hosts_path`."""
    where = f"{creds.host}:{creds.port}"
    client = paramiko.SSHClient()
    try:
        if not creds.known_hosts_path.exists():
            raise HostKeyRejected(
                f"sftp {where}: known-hosts file {creds.known_hosts_path} does not exist; add "
                "the server's host key to it (ssh-keyscan) before connecting"
            )
        client.load_host_keys(str(creds.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        pkey = _load_key(creds)
        try:
            _connect(client, creds, pkey, timeout)
        except paramiko.BadHostKeyException as err:
            raise HostKeyRejected(
                f"sftp {where}: the server's host key differs from the one in "
                f"{creds.known_hosts_path}; refusing to connect (verify the server, then "
                "update the known-hosts entry)"
            ) from err
        except paramiko.AuthenticationException as err:
            raise SftpError(f"sftp {where}: login as {creds.username} refused") from err
        except paramiko.SSHException as err:
            if "known_hosts" in str(err):
                raise HostKeyRejected(
                    f"sftp {where}: host key not found in {creds.known_hosts_path}; refusing "
                    "to connect (add the server's key with ssh-keyscan after verifying it)"
                ) from err
            raise SftpError(f"sftp {where}: {err}") from err
        except OSError as err:
            raise SftpError(f"sftp {where}: cannot connect: {err}") from err
        sftp = client.open_sftp()
        try:
            yield sftp
        finally:
            sftp.close()
    finally:
        client.close()


def list_files(sftp: paramiko.SFTPClient, directory: str, pattern: str) -> list[RemoteFile]:
    """Regular files in `directory` whose names fully match `pattern`, oldest name first."""
    regex = re.compile(pattern)
    out = []
    for attr in sftp.listdir_attr(directory):
        if not regex.fullmatch(attr.filename) or not stat.S_ISREG(attr.st_mode or 0):
            continue
        out.append(
            RemoteFile(
                path=posixpath.join(directory, attr.filename),
                name=attr.filename,
                size=int(attr.st_size or 0),
                mtime=datetime.fromtimestamp(int(attr.st_mtime or 0), UTC),
            )
        )
    return sorted(out, key=lambda f: f.name)


@dataclass
class SftpSyncReport:
    source: str
    files: list[FileLoadReport] = field(default_factory=list)
    skipped: int = 0  # same size and mtime as loaded: not downloaded

    @property
    def failed(self) -> list[FileLoadReport]:
        return [f for f in self.files if not f.ok]

    def as_metadata(self) -> dict:
        return {
            "files_seen": len(self.files) + self.skipped,
            "files_loaded": sum(f.status == "loaded" for f in self.files),
            "files_unchanged": self.skipped + sum(f.status == "unchanged" for f in self.files),
            "files_failed": len(self.failed),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_rejected": sum(f.rows_rejected for f in self.files),
            "orders_inserted": sum(f.orders.inserted for f in self.files),
            "orders_updated": sum(f.orders.updated for f in self.files),
            "orders_withdrawn": sum(f.withdrawn for f in self.files),
            "errors": [f.render() for f in self.failed],
        }

    def render(self) -> str:
        return "\n".join(f.render() for f in self.files) or f"{self.source}: no new files"


def _source(source: str, channels: ChannelsFile | None) -> ChannelConfig:
    cfg = (channels or load_channels()).channels.get(source)
    if cfg is None or cfg.kind != "sftp" or cfg.sftp is None or cfg.file_format is None:
        raise SftpError(f"{source!r} is not an sftp source in config/channels.yaml")
    return cfg


def _directory(cfg: ChannelConfig, creds: SftpCredentials) -> str:
    return creds.directory if creds.directory else (cfg.sftp.directory or "/")


def pending_files(
    conn: psycopg.Connection,
    source: str,
    *,
    creds: SftpCredentials | None = None,
    channels: ChannelsFile | None = None,
) -> list[RemoteFile]:
    """Files on the server that are new or whose size/mtime changed since their last load (for
    a sensor: cheap, downloads nothing)."""
    cfg = _source(source, channels)
    creds = creds or resolve_credentials(source)
    ensure_raw_tables(conn, [source])
    known = loaded_files(conn, source)
    with open_sftp(creds, timeout=cfg.sftp.timeout_seconds) as sftp:
        files = list_files(sftp, _directory(cfg, creds), cfg.sftp.pattern)
    return [f for f in files if not _same_stat(known.get(f.path), f)]


def _same_stat(known, remote: RemoteFile) -> bool:  # noqa: ANN001 (LoadedFile | None)
    return known is not None and known.size == remote.size and known.mtime == remote.mtime


def sync_source(
    conn: psycopg.Connection,
    source: str,
    *,
    creds: SftpCredentials | None = None,
    channels: ChannelsFile | None = None,
    run_id: str | None = None,
) -> SftpSyncReport:
    """Load every new or changed file of `source` into raw.<source>_orders."""
    cfg = _source(source, channels)
    creds = creds or resolve_credentials(source)
    ensure_raw_tables(conn, [source])
    known = loaded_files(conn, source)
    report = SftpSyncReport(source)
    directory = _directory(cfg, creds)
    with _Session(creds, cfg.sftp.timeout_seconds) as session:
        listing = session.run(
            lambda sftp: list_files(sftp, directory, cfg.sftp.pattern), f"listing {directory}"
        )
        for remote in listing:
            before = known.get(remote.path)
            if _same_stat(before, remote):
                report.skipped += 1
                continue
            try:
                data = session.run(
                    lambda sftp, r=remote: _download(sftp, r), f"downloading {remote.path}"
                )
            except _DROPPED as err:  # the connection lives: this file alone failed
                report.files.append(
                    FileLoadReport(source, remote.path, "failed", error=f"download failed: {err}")
                )
                continue
            digest = hashlib.sha256(data).hexdigest()
            if before is not None and before.content_hash == digest:
                mark_unchanged(conn, source, remote.path, len(data), remote.mtime)
                report.files.append(FileLoadReport(source, remote.path, "unchanged"))
                continue
            loaded = load_file_bytes(
                conn, data, source=source, fmt=cfg.file_format, path=remote.path,
                mtime=remote.mtime, content_hash=digest, run_id=run_id,
                replace_missing=cfg.sftp.replace_missing,
            )  # fmt: skip
            report.files.append(loaded)
            if loaded.ok and cfg.sftp.move_to:
                session.run(
                    lambda sftp, r=remote: _move(sftp, r, cfg.sftp.move_to), f"moving {remote.path}"
                )
    return report


def _download(sftp: paramiko.SFTPClient, remote: RemoteFile) -> bytes:
    with sftp.open(remote.path, "rb") as handle:
        handle.prefetch()
        return handle.read()


class _Session:
    """One SFTP connection for a sync, opened again when it drops mid-call."""

    def __init__(self, creds: SftpCredentials, timeout: float):
        self.creds, self.timeout = creds, timeout
        self.reconnects = 0
        self._ctx: AbstractContextManager[paramiko.SFTPClient] | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def __enter__(self) -> _Session:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _open(self) -> None:
        self._ctx = open_sftp(self.creds, timeout=self.timeout)
        self._sftp = self._ctx.__enter__()

    def _close(self) -> None:
        ctx, self._ctx, self._sftp = self._ctx, None, None
        if ctx is not None:
            with suppress(*_DROPPED):  # closing a dead connection has nothing left to close
                ctx.__exit__(None, None, None)

    def _alive(self) -> bool:
        channel = self._sftp.get_channel() if self._sftp is not None else None
        transport = channel.get_transport() if channel is not None else None
        return bool(transport and transport.is_active() and not channel.closed)

    def run(self, call: Callable[[paramiko.SFTPClient], T], what: str) -> T:
        """`call(sftp)`; when the connection died under it, reconnect and call again. An error
        on a live connection (a missing file...) is raised as it is."""
        while True:
            try:
                return call(self._sftp)
            except _DROPPED as err:
                if self._alive():
                    raise
                self._close()
                where = f"sftp {self.creds.host}:{self.creds.port}"
                if self.reconnects >= RECONNECTS:
                    raise SftpError(
                        f"{where}: connection dropped while {what} ({type(err).__name__}: "
                        f"{err}) after {RECONNECTS} reconnects; the files loaded before it "
                        "stay loaded, the next run resumes with this one"
                    ) from err
                self.reconnects += 1
                log.warning("%s: connection dropped while %s, reconnecting", where, what)
                self._open()


def _move(sftp: paramiko.SFTPClient, remote: RemoteFile, move_to: str) -> None:
    target_dir = posixpath.join(posixpath.dirname(remote.path), move_to)
    try:
        sftp.stat(target_dir)
    except FileNotFoundError:
        sftp.mkdir(target_dir)
    target = posixpath.join(target_dir, remote.name)
    try:
        sftp.posix_rename(remote.path, target)  # replaces an older processed copy
    except OSError:
        sftp.rename(remote.path, target)
