"""The regional platforms' SFTP drop: a real SFTP server (asyncssh) on loopback.

Layout under `root`:
    keys/ssh_host_ed25519_key   the server's host key, created once and kept (a known host key)
    keys/client_ed25519(.pub)   the key pair the connector logs in with, created once and kept
    keys/known_hosts            the host key line for this server's address, rewritten per start
    files/<channel>/            each platform's exports; `files/` is the SFTP root the client sees,
                                so regional_a's directory is `/regional_a`

Key-based login for one user; a password login as well when one is given. The server runs its
own asyncio loop in a background thread, so synchronous callers (tests, the sandbox CLI) can use it.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncssh

from sandbox.exports import EXPORT_CHANNELS, publish_bytes, reexport_day, write_exports

HOST = "127.0.0.1"
USERNAME = "orderpulse"


def _load_or_create_key(path: Path) -> asyncssh.SSHKey:
    if path.exists():
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return key


def known_hosts_line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    """A known_hosts entry in OpenSSH form (`[host]:port` unless the port is 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.export_public_key('openssh').decode().strip()}\n"


class _Auth(asyncssh.SSHServer):
    def __init__(self, username: str, client_key: asyncssh.SSHKey, password: str | None):
        self._username = username
        self._client_key = client_key
        self._password = password

    def begin_auth(self, username: str) -> bool:
        return True  # every user must authenticate

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._username and key.public_data == self._client_key.public_data

    def password_auth_supported(self) -> bool:
        return self._password is not None

    def validate_password(self, username: str, password: str) -> bool:
        if self._password is None:
            return False
        ok_user = secrets.compare_digest(username.encode(), self._username.encode())
        return ok_user and secrets.compare_digest(password.encode(), self._password.encode())


@dataclass
class SftpHandle:
    """A running sandbox SFTP server."""

    host: str
    port: int
    username: str
    root: Path
    channels: tuple[str, ...]
    password: str | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _server: Any = field(default=None, repr=False)

    @property
    def files_root(self) -> Path:
        return self.root / "files"

    @property
    def private_key_path(self) -> Path:
        return self.root / "keys" / "client_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.root / "keys" / "known_hosts"

    @property
    def host_key_path(self) -> Path:
        return self.root / "keys" / "ssh_host_ed25519_key"

    def info(self) -> dict[str, Any]:
        """What a client needs (the `sftp` entry of sandbox.json)."""
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "private_key_path": str(self.private_key_path),
            "known_hosts_path": str(self.known_hosts_path),
            "directories": {c: f"/{c}" for c in self.channels},
        }
        if self.password is not None:
            out["password"] = self.password
        return out

    def local_path(self, channel: str, name: str) -> Path:
        return self.files_root / channel / name

    def publish(self, channel: str, name: str, data: bytes, *, mtime: float | None = None) -> Path:
        """Publish or replace one file in `channel`'s directory (atomic for readers)."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"file name {name!r} must be a plain name inside the directory")
        path = self.local_path(channel, name)
        publish_bytes(path, data, mtime=mtime)
        return path

    def remove(self, channel: str, name: str) -> None:
        self.local_path(channel, name).unlink(missing_ok=True)

    def publish_world(self, world: Any, *, as_of: datetime | None = None) -> list[Path]:
        """(Re)write the exports of `world`; only files whose content changed are touched."""
        return write_exports(world, self.files_root, channels=self.channels, as_of=as_of)

    def reexport_day(
        self, world: Any, channel: str, day: date, *, encoding: str | None = None
    ) -> Path:
        """A corrected re-export of one day from the orders as they are now."""
        return reexport_day(world, self.files_root, channel, day, encoding=encoding)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop, server = self._loop, self._server

        async def _close() -> None:
            server.close()
            await server.wait_closed()
            # sessions a client left open would otherwise die with the loop, noisily
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._loop = self._thread = self._server = None


def start_sftp(
    world: Any,
    root: Path,
    *,
    password: str | None = None,
    username: str = USERNAME,
    channels: Sequence[str] = EXPORT_CHANNELS,
    as_of: datetime | None = None,
) -> SftpHandle:
    """Write `world`'s exports under `root/files/` and serve them over SFTP on 127.0.0.1, port
    chosen by the OS. `world` may be None (empty directories), a World or a list of orders."""
    root = Path(root)
    handle = SftpHandle(HOST, 0, username, root, tuple(channels), password)
    host_key = _load_or_create_key(handle.host_key_path)
    client_key = _load_or_create_key(handle.private_key_path)
    for channel in channels:
        (handle.files_root / channel).mkdir(parents=True, exist_ok=True)
    if world is not None:
        handle.publish_world(world, as_of=as_of)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    outcome: dict[str, Any] = {}

    def _run() -> None:
        asyncio.set_event_loop(loop)

        async def _listen() -> None:
            chroot = str(handle.files_root).encode()
            outcome["server"] = await asyncssh.listen(
                HOST,
                0,
                server_host_keys=[host_key],
                server_factory=lambda: _Auth(username, client_key, password),
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=chroot),
                allow_scp=False,
            )

        try:
            loop.run_until_complete(_listen())
        except BaseException as err:  # reported to the starting thread
            outcome["error"] = err
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=_run, name="sandbox-sftp", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the sandbox SFTP server did not start within 30 s")
    if "error" in outcome:
        raise RuntimeError(f"the sandbox SFTP server did not start: {outcome['error']}")
    server = outcome["server"]
    handle.port = server.sockets[0].getsockname()[1]
    handle._loop, handle._thread, handle._server = loop, thread, server
    handle.known_hosts_path.write_text(known_hosts_line(HOST, handle.port, host_key))
    return handle
