"""TLS only, except on loopback: the one rule every outgoing HTTP client follows (the
connectors' clients and the alert robot). Real endpoints must use `https://` (httpx verifies
certificates); plain `http://` is allowed only to this machine (the sandbox)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import httpx


class InsecureEndpoint(ValueError):
    """A plain-HTTP (or non-HTTP) URL for a host that is not this machine."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves the machine."""
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_tls(
    url: str,
    *,
    what: str,
    fix: str,
    shown: Callable[[str], str] = str,
    error: type[Exception] = InsecureEndpoint,
) -> str:
    """`url` if it is `https://`, or `http://` to a loopback host; otherwise `error` naming
    `what`, the URL without its query (tokens ride there; `shown` may blank more) and `fix`."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = httpx.URL("")
    if parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback(parsed.host)):
        return url
    where = shown(str(parsed.copy_with(query=None, fragment=None)))
    problem = "is plain HTTP" if parsed.scheme == "http" else "is not an https:// URL"
    raise error(
        f"{what}: {where} {problem}; real endpoints must use https:// (certificates are "
        f"verified), plain http:// is allowed only on loopback (127.0.0.1, ::1, localhost). "
        f"Fix: {fix}"
    )
