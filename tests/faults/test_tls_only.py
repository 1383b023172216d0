"""TLS for real endpoints: plain http:// is refused for every host but loopback (at
configuration, naming the channel and the setting to fix, and again on every request; the
group robot's webhook too, before anything is posted), and
certificates are verified (a loopback HTTPS server with an untrusted or misnamed certificate is
refused, without retries; trusting its CA makes the same call pass). No code turns verification
or host-key checking off."""

from __future__ import annotations

import ast
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from connectors.http import (
    IngestError,
    InsecureEndpoint,
    RetryPolicy,
    json_body,
    make_http_client,
    raise_for_transport,
    require_tls,
)
from connectors.marketplace import build_client
from connectors.merchant_systems import merchant_systems_endpoint
from quality.robot import InsecureRobotWebhook, post_markdown
from sandbox.model import MARKETPLACES
from tests.tls_certs import PINNED, self_signed

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "connectors",
    "quality",
    "orchestration",
    "kernel",
    "orderpulse",
    "fulfillment",
    "sandbox",
    "bench",
)
FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.02, jitter=0.0)


# -- plain HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_a_marketplace_on_plain_http_is_refused_naming_channel_and_fix(channel: str) -> None:
    creds = {"base_url": "http://gw.example.com/router?access_token=tok-in-query-123"}
    with pytest.raises(InsecureEndpoint) as caught:
        build_client(channel, creds, http=None)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(f"{channel} base_url: http://gw.example.com/router is plain HTTP")
    assert f"ORDERPULSE_{channel.upper()}_BASE_URL" in message and "https://" in message
    assert "tok-in-query-123" not in message  # a token in the query never reaches the error
    # the sandbox on loopback and any https:// gateway are fine
    for url in ("http://127.0.0.1:8001", "http://localhost:8001", "http://[::1]:8001",
                "https://gw.example.com"):  # fmt: skip
        assert build_client(channel, {"base_url": url}, http=None).base_url == url  # type: ignore[arg-type]


def test_merchant_systems_on_plain_http_are_refused(tmp_path: Path) -> None:
    env = {
        "ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL": "http://wms.example.com",
        "ORDERPULSE_MERCHANT_SYSTEMS_TOKEN": "t0k3n-xyz",
    }
    with pytest.raises(InsecureEndpoint, match="ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL") as caught:
        merchant_systems_endpoint(tmp_path / "none.json", environ=env)
    assert "merchant systems base_url: http://wms.example.com is plain HTTP" in str(caught.value)
    env["ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL"] = "https://wms.example.com"
    assert (
        merchant_systems_endpoint(tmp_path / "none.json", environ=env)[0]
        == "https://wms.example.com"
    )
    for url in ("ftp://wms.example.com", "http://10.0.0.8", "http://127.0.0.1.example.com"):
        with pytest.raises(InsecureEndpoint):
            require_tls(url, what="x", fix="y")


def test_every_request_to_a_plain_http_host_is_refused_before_it_is_sent() -> None:
    # 203.0.113.0/24 is TEST-NET-3: a request that got out would hang until its time-out
    with make_http_client(timeout=30, policy=FAST) as http:
        for url in ("http://203.0.113.9/api", "http://gw.example.com/api"):
            with pytest.raises(InsecureEndpoint, match="GET request: .* is plain HTTP"):
                http.call(lambda u=url: http.client.get(u), channel="jd", what="list")
        assert http.stats("jd").retries == 0


def test_the_group_robot_refuses_a_plain_http_webhook_before_posting() -> None:
    sent: list[str] = []

    def robot(request: httpx.Request) -> httpx.Response:  # records what would leave
        sent.append(str(request.url.copy_with(query=None)))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    with httpx.Client(transport=httpx.MockTransport(robot)) as client:
        refused = {
            "http://oapi.example.com/robot/send?access_token=tok-robot-123":
                "robot webhook: http://oapi.example.com/robot/send is plain HTTP",
            "http://203.0.113.9/robot/send": "http://203.0.113.9/robot/send is plain HTTP",
            "ftp://oapi.example.com/robot": "is not an https:// URL",
        }  # fmt: skip
        for url, reason in refused.items():
            with pytest.raises(InsecureRobotWebhook) as caught:
                post_markdown(url, "SECxyz", "t", "text", PINNED, client=client)
            message = str(caught.value)
            assert reason in message and "ORDERPULSE_ROBOT_WEBHOOK_URL to the https://" in message
            assert "tok-robot-123" not in message and "SECxyz" not in message
        assert sent == []  # refused before anything was sent
        # the sandbox's robot on loopback and any https:// webhook are posted to
        allowed = ("http://127.0.0.1:8001/robot/send?access_token=t", "http://[::1]:8001/robot/send",
                   "https://oapi.dingtalk.com/robot/send")  # fmt: skip
        for url in allowed:
            post_markdown(url, "SECxyz", "t", "text", PINNED, client=client)
    assert sent == [
        "http://127.0.0.1:8001/robot/send",
        "http://[::1]:8001/robot/send",
        "https://oapi.dingtalk.com/robot/send",
    ]


# -- certificate verification ----------------------------------------------------------------------


class _Ok(http.server.BaseHTTPRequestHandler):
    served: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        type(self).served.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def https_server(tmp_path: Path) -> Iterator:  # noqa: ANN201
    """`start(cert, key) -> base URL` of a loopback HTTPS server; the paths it served."""
    servers: list[http.server.ThreadingHTTPServer] = []
    _Ok.served = []

    def start(cert: Path, key: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}"

    yield start, _Ok.served
    for server in servers:
        server.shutdown()
        server.server_close()


def _get(http, url: str):  # noqa: ANN001, ANN202
    def once() -> dict:
        response = http.client.get(url)
        raise_for_transport(response)
        return json_body(response)

    return once


def test_certificates_are_verified_and_an_untrusted_one_is_refused_without_retries(
    https_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, served = https_server
    ip_cert = self_signed(tmp_path, "loopback")
    base = start(*ip_cert)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with make_http_client(timeout=5, policy=FAST) as http, pytest.raises(IngestError) as caught:
        http.call(_get(http, f"{base}/orders"), channel="taobao", what="list")
    message = str(caught.value)
    assert "taobao: list failed after 1 attempt(s)" in message
    assert "TLS certificate not trusted" in message and "verification stays on" in message
    assert served == []  # the handshake failed: no request reached the server

    # the same server, its certificate trusted: the same call passes (so it was verification)
    monkeypatch.setenv("SSL_CERT_FILE", str(ip_cert[0]))
    with make_http_client(timeout=5, policy=FAST) as http:
        assert http.call(_get(http, f"{base}/orders"), channel="taobao", what="list") == {
            "ok": True
        }
    assert served == ["/orders"]

    # a trusted certificate for another name is refused too: the host name is checked
    other = self_signed(tmp_path, "other", x509.DNSName("other.example"))
    misnamed = start(*other)
    monkeypatch.setenv("SSL_CERT_FILE", str(other[0]))
    with make_http_client(timeout=5, policy=FAST) as http, pytest.raises(IngestError) as caught:
        http.call(_get(http, f"{misnamed}/orders"), channel="taobao", what="list")
    assert "TLS certificate not trusted" in str(caught.value)
    assert "127.0.0.1" in str(caught.value) and served == ["/orders"]


# -- nothing turns the checks off ------------------------------------------------------------------


SUSPECT_WORDS = (
    "verify", "check_hostname", "CERT_NONE", "_create_unverified_context", "AutoAddPolicy",
    "WarningPolicy", "known_hosts",
)  # fmt: skip


def _weakenings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Lines that switch off TLS verification or SSH host-key checking."""
    off = (False, None, 0, "")
    unsafe = {"CERT_NONE", "_create_unverified_context", "AutoAddPolicy", "WarningPolicy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("verify", "check_hostname"):
            if isinstance(node.value, ast.Constant) and node.value.value in off:
                yield node.value.lineno, f"{node.arg}={node.value.value!r}"
        elif isinstance(node, ast.Attribute | ast.Name):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            if name in unsafe:
                yield node.lineno, name
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            weakened = [
                t.attr
                for t in node.targets
                if isinstance(t, ast.Attribute) and t.attr in ("check_hostname", "verify_mode")
            ]
            if weakened and node.value.value in off:
                yield node.lineno, f"{weakened[0]} = {node.value.value!r}"
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "connect":
            # asyncssh: known_hosts=None accepts any host key
            for kw in node.keywords:
                none = isinstance(kw.value, ast.Constant) and kw.value.value is None
                if kw.arg == "known_hosts" and none:
                    yield kw.value.lineno, "known_hosts=None"


def test_no_code_turns_tls_verification_or_host_key_checks_off() -> None:
    found = []
    files = [f for package in PACKAGES for f in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 100
    for path in files:
        text = path.read_text()
        if not any(word in text for word in SUSPECT_WORDS):
            continue  # nothing to look at: spare the parse
        for line, what in _weakenings(ast.parse(text, str(path))):
            found.append(f"{path.relative_to(REPO)}:{line}: {what}")
    assert found == []
    # and the check itself sees what it must
    planted = (
        "httpx.Client(verify=False)\nc.check_hostname = False\nssl.CERT_NONE\n"
        "client.set_missing_host_key_policy(paramiko.AutoAddPolicy())\n"
        "asyncssh.connect(host, known_hosts=None)\nhttpx.get(url, verify=True)\n"
    )
    assert sorted(line for line, _ in _weakenings(ast.parse(planted))) == [1, 2, 3, 4, 5]
