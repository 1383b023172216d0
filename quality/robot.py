"""The group robot for urgent alerts: a DingTalk-style custom robot webhook, signed the
platform's way.

Signing (DingTalk "加签"): string_to_sign = f"{timestamp_ms}\\n{secret}", HMAC-SHA256 keyed with
the secret, base64, then url-encoded into the `timestamp` and `sign` query parameters of the
webhook URL. The robot answers `{"errcode": 0, "errmsg": "ok"}`; any other errcode is a failure.
Settings: ORDERPULSE_ROBOT_WEBHOOK_URL and ORDERPULSE_ROBOT_SECRET.

Transport: like the connectors' clients (the rule in kernel/tls.py), the robot refuses plain
`http://` for any host but this machine's loopback (the sandbox's robot), and httpx verifies
certificates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote_plus

import httpx

from kernel.tls import require_tls as kernel_require_tls


class RobotError(RuntimeError):
    """The robot refused or could not be reached; the text carries no secret."""


class InsecureRobotWebhook(RobotError):
    """The webhook URL is plain HTTP (or not HTTP) for a host that is not this machine."""


def require_tls(webhook_url: str) -> str:
    """`webhook_url` if it is `https://`, or `http://` to a loopback host; otherwise
    `InsecureRobotWebhook` in the connectors' wording (kernel/tls.py), the URL shown without
    its query (the robot's access token rides there)."""
    return kernel_require_tls(
        webhook_url,
        what="robot webhook",
        fix="set ORDERPULSE_ROBOT_WEBHOOK_URL to the https:// webhook",
        error=InsecureRobotWebhook,
    )


def robot_sign(secret: str, timestamp_ms: int) -> str:
    """The base64 HMAC-SHA256 of "timestamp\\nsecret" (not yet url-encoded)."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(webhook_url: str, secret: str, timestamp_ms: int) -> str:
    joiner = "&" if "?" in webhook_url else "?"
    sign = quote_plus(robot_sign(secret, timestamp_ms))
    return f"{webhook_url}{joiner}timestamp={timestamp_ms}&sign={sign}"


def post_markdown(
    webhook_url: str,
    secret: str,
    title: str,
    text: str,
    now: datetime,
    client: httpx.Client | None = None,
) -> None:
    """Post one markdown message; raise RobotError unless the robot says errcode 0 (and
    before sending anything when the URL is plain HTTP to another machine)."""
    require_tls(webhook_url)
    ts = int(now.timestamp() * 1000)
    body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    own = client is None
    http = client or httpx.Client(timeout=10.0)
    try:
        resp = http.post(signed_url(webhook_url, secret, ts), json=body)
        answer = (
            resp.json()
            if resp.headers.get("content-type", "").startswith("application/json")
            else {}
        )
    except (httpx.HTTPError, ValueError) as err:
        raise RobotError(f"robot webhook unreachable: {type(err).__name__}") from None
    finally:
        if own:
            http.close()
    if resp.status_code != 200 or answer.get("errcode") != 0:
        raise RobotError(
            f"robot refused the message: HTTP {resp.status_code}, "
            f"errcode {answer.get('errcode')}, {answer.get('errmsg', '')}"[:300]
        )
