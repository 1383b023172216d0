"""The group robot's side of urgent alerts: a DingTalk-style custom robot webhook that checks
the signature and keeps the messages it accepted.

`POST /robot/send?access_token=…&timestamp=…&sign=…` with a JSON message. The sign is the
base64 HMAC-SHA256, keyed with the robot's secret, of "timestamp\\nsecret" (url-encoded in the
query); a timestamp more than an hour away from the robot's clock is refused, as the platform
does. Answers like the platform: HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or a non-zero
errcode (310000 sign/timestamp refused, 300001 unknown token, 40035 bad body).
`GET /robot/messages` lists the accepted ones (for tests and the demo summary).

Implemented here on its own (no import of OrderPulse's sender), so a mistake in one side's
signing cannot hide in the other's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MAX_SKEW_MS = 3_600_000


def expected_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class RobotReceiver:
    """One group robot: its access token, its secret and the messages it accepted."""

    def __init__(
        self, access_token: str, secret: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.access_token = access_token
        self.secret = secret
        self.clock = clock
        self.messages: list[dict[str, Any]] = []
        self.refused = 0
        self._lock = threading.Lock()
        self.app = self._build_app()

    def webhook_url(self, base_url: str) -> str:
        return f"{base_url}/robot/send?access_token={self.access_token}"

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="OrderPulse sandbox: group robot", docs_url=None, redoc_url=None)
        app.state.receiver = self

        def refuse(errcode: int, errmsg: str) -> JSONResponse:
            with self._lock:
                self.refused += 1
            return JSONResponse({"errcode": errcode, "errmsg": errmsg})

        @app.post("/robot/send")
        async def send(request: Request) -> JSONResponse:
            q = request.query_params
            if not hmac.compare_digest(q.get("access_token", ""), self.access_token):
                return refuse(300001, "token is not exist")
            timestamp, sign = q.get("timestamp", ""), q.get("sign", "")
            if not timestamp.isdigit():
                return refuse(310000, "invalid timestamp")
            if abs(int(self.clock() * 1000) - int(timestamp)) > MAX_SKEW_MS:
                return refuse(310000, "invalid timestamp")
            # starlette has url-decoded the query: compare the base64 text itself
            if not hmac.compare_digest(sign, expected_sign(self.secret, timestamp)):
                return refuse(310000, "sign not match")
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or body.get("msgtype") not in {"text", "markdown"}:
                return refuse(40035, "msgtype is missing or not supported")
            with self._lock:
                self.messages.append({"timestamp": int(timestamp), **body})
            return JSONResponse({"errcode": 0, "errmsg": "ok"})

        @app.get("/robot/messages")
        def messages() -> dict:
            with self._lock:
                return {"messages": list(self.messages), "refused": self.refused}

        return app


def start_robot_receiver(apps: dict[str, Any]) -> dict[str, str]:
    """Serve a fresh robot beside the other sandbox apps (`apps["robot"]`, stopped with them)
    and give its `sandbox.json` entry: the webhook URL (with its token) and the secret."""
    import secrets

    from sandbox.server import serve_app  # the server includes this module: import late

    receiver = RobotReceiver(secrets.token_urlsafe(16), "SEC" + secrets.token_hex(24))
    apps["robot"] = serve_app(receiver.app, "robot")
    return {"webhook_url": receiver.webhook_url(apps["robot"].base_url), "secret": receiver.secret}
