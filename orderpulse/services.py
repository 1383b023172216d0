"""Background services for `orderpulse up`: the live sandbox and the webhook receiver."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console


@dataclass
class Services:
    stoppers: list = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):  # best effort on shutdown
                stop()


def _serve_in_thread(app, port: int = 0):
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return server, sock.getsockname()[1]


def start_services(
    console: Console,
    *,
    home: Path,
    live: bool,
    seed: int = 7,
    orders: int = 10_000,
    days: int = 3,
    calm: bool = False,
) -> Services:
    services = Services()
    webhook_url = None
    try:
        from connectors.channels_config import marketplaces
        from connectors.credentials import load_credentials
        from connectors.webhook_app import create_webhook_app

        sandbox_file = home / "sandbox.json"
        channels = marketplaces()  # config/channels.yaml
        # the receiver starts first so the sandbox knows where to push
        app = create_webhook_app(
            os.environ["ORDERPULSE_WAREHOUSE_URL"],
            {c: (lambda c=c: load_credentials(c, sandbox_file)) for c in channels},
        )
        server, port = _serve_in_thread(app)
        services.stoppers.append(lambda: setattr(server, "should_exit", True))
        webhook_url = f"http://127.0.0.1:{port}/webhooks"
        console.print(f"webhook receiver: {webhook_url}/<channel>")
    except ImportError as exc:
        console.print(f"[yellow]webhook receiver not available: {exc}[/]")

    from sandbox.server import Sandbox

    # the world ends a few minutes ago: PDD serves only windows ending >= 3 min before its clock
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    sandbox = Sandbox(
        home, seed=seed, orders=orders, days=days, end=end, webhook_url=webhook_url,
        live=live, erp_admin_url=os.environ.get("ORDERPULSE_WAREHOUSE_URL"), calm=calm,
    ).start()  # fmt: skip
    services.stoppers.append(sandbox.stop)
    endpoints = json.loads((home / "sandbox.json").read_text()).get("channels", {})
    console.print(f"sandbox: {len(endpoints)} marketplace gateways on loopback (live={live})")
    return services
