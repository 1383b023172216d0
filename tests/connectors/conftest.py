"""Fixtures of the connector tests: ASGI apps served by uvicorn on 127.0.0.1 (OS-chosen port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn


@contextmanager
def serving(app) -> Iterator[str]:  # noqa: ANN001 - any ASGI app
    """Run `app` on a loopback port in a background thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture()
def serve() -> Iterator[Callable[[object], str]]:
    """`serve(app) -> base_url`; every server stops at the end of the test."""
    stack: list = []

    def start(app) -> str:  # noqa: ANN001
        ctx = serving(app)
        url = ctx.__enter__()
        stack.append(ctx)
        return url

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def sandbox_session(tmp_path_factory: pytest.TempPathFactory):
    """One sandbox for the session (a few hundred orders per marketplace over three days)."""
    from sandbox.server import Sandbox
    from tests.connectors.sandbox_env import DAYS, ORDERS, SEED

    home = tmp_path_factory.mktemp("sbhome")
    with Sandbox(home, seed=SEED, orders=ORDERS, days=DAYS) as sandbox:
        yield sandbox


@pytest.fixture()
def sandbox_env_factory(sandbox_session):
    """`factory(faults={channel: FaultConfig}) -> SandboxEnv`; faults are off again afterwards."""
    from tests.connectors.sandbox_env import SandboxEnv

    env = SandboxEnv(sandbox_session)
    env.reset()

    def factory(faults=None):  # noqa: ANN001, ANN202
        for channel, config in (faults or {}).items():
            env.set_faults(channel, config)
        return env

    yield factory
    env.reset()
