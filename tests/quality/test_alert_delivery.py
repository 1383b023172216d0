"""Alert delivery against real servers on loopback: an aiosmtpd SMTP server (with AUTH), the
sandbox's group robot, and the outbox when no SMTP server is configured (real PostgreSQL)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from kernel.settings import Settings
from quality.alert_rules import load_alert_config
from quality.alerts import Alert, Attachment, Chart, deliver_pending, raise_alerts
from quality.mailer import Mailer
from quality.robot import RobotError, post_markdown
from sandbox.robot_receiver import RobotReceiver
from sandbox.server import serve_app
from tests.tls_certs import self_signed

# plain-text AUTH on loopback is the point of most tests here (STARTTLS has its own test)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
USER, PASSWORD = "alerts", "s3cret-pw-7781"
CFG = load_alert_config()


class Inbox:
    """The aiosmtpd handler: every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # the server answers 535 itself


class SmtpServer:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_authenticator,
            auth_require_tls=False,
            auth_required=True,
            auth_exclude_mechanism=["LOGIN"],  # PLAIN only: one clear answer to a bad password
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture()
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        yield c


def _mailer(home: Path, port: int | None, **extra) -> Mailer:
    fields = {
        "home": home,
        "smtp_host": "127.0.0.1" if port else None,
        "smtp_port": port or 587,
        "smtp_starttls": False,
        "smtp_user": USER,
        "smtp_password": PASSWORD,
        "smtp_from": "OrderPulse <alerts@orderpulse.example>",
        "smtp_timeout_seconds": 2,
        "robot_webhook_url": None,
    }
    return Mailer(
        Settings(**{**fields, **extra}), attempts=3, backoff_seconds=0.01, clock=lambda: NOW
    )


def _late_region(subject: str = "广东省 deliveries late 3 days running") -> Alert:
    days = [f"11-{d}" for d in range(14, 21)]
    return Alert(
        "delivery_timeout",
        subject,
        {"region": "广东省", "timeout_rate": 0.31, "days_over": 3},
        "region=广东省",
        chart=Chart("Timeout rate, 7 days", days, {"广东省": [0.05] * 4 + [0.2, 0.25, 0.31]}, 0.15),
        table=[{"warehouse": "WH-GZ", "backlog": 412, "carrier": "SF", "on_time": 0.71}],
    )


def _row(conn: psycopg.Connection, alert_id: int) -> dict:
    cur = conn.execute(
        "select delivery, sent_at, attempts, last_error, robot_delivery from ops.alerts "
        "where id = %s",
        [alert_id],
    )
    return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))


def test_alert_arrives_once_with_recipients_subject_and_inline_chart(
    conn, smtp: SmtpServer, tmp_path: Path
) -> None:
    mailer = _mailer(tmp_path, smtp.port)
    [alert_id] = raise_alerts(conn, [_late_region()], CFG, NOW)
    report = deliver_pending(conn, CFG, mailer, NOW)
    assert (report.sent, report.failed) == (1, 0)

    [(rcpts, msg)] = smtp.inbox.received
    assert rcpts == ["supply-chain@orderpulse.example"]
    assert msg["To"] == "supply-chain@orderpulse.example"
    assert msg["Subject"] == "[OrderPulse warning] 广东省 deliveries late 3 days running"
    plain = msg.get_body(("plain",)).get_content()
    assert "timeout_rate" in plain and "WH-GZ" in plain
    html = msg.get_body(("html",)).get_content()
    pngs = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(pngs) == 1
    png = pngs[0]
    assert png.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert f'src="cid:{png["Content-ID"].strip("<>")}"' in html
    assert "412" in html  # the detail table beside the chart

    assert _row(conn, alert_id) == {
        "delivery": "sent",
        "sent_at": NOW,
        "attempts": 1,
        "last_error": None,
        "robot_delivery": None,
    }
    # nothing pending: no second email
    assert deliver_pending(conn, CFG, mailer, NOW).sent == 0
    # the breach is seen again within the cool-down: not raised, not sent
    assert (
        raise_alerts(conn, [_late_region("广东省 still late")], CFG, NOW + timedelta(hours=5)) == []
    )
    assert raise_alerts(conn, [_late_region()], CFG, NOW + timedelta(hours=23)) == []
    deliver_pending(conn, CFG, mailer, NOW + timedelta(hours=23))
    assert len(smtp.inbox.received) == 1


def test_smtp_outage_is_retried_recorded_then_delivered(conn, tmp_path: Path) -> None:
    server = SmtpServer()  # port reserved, server not running yet: connection refused
    mailer = _mailer(tmp_path, server.port)
    ids = raise_alerts(
        conn,
        [
            Alert("price_difference", "SKU-1 differs across platforms", {"share": 0.02}, "sku=1"),
            Alert("stock_mismatch", "SKU-2 platform vs WMS off by 7", {"diff": 7}, "sku=2"),
        ],
        CFG,
        NOW,
    )
    report = deliver_pending(conn, CFG, mailer, NOW)
    assert (report.sent, report.failed) == (0, 2)
    first, second = (_row(conn, i) for i in ids)
    assert first["delivery"] == "failed" and first["attempts"] == 3 and first["sent_at"] is None
    assert "ConnectionRefusedError" in first["last_error"]
    assert PASSWORD not in first["last_error"]
    # the server is known down: the second alert fails fast, untried, and is kept too
    assert second["delivery"] == "failed" and second["attempts"] == 0
    assert second["last_error"].startswith("not tried")

    server.start()
    try:
        later = NOW + timedelta(minutes=1)
        report = deliver_pending(conn, CFG, mailer, later)
        assert (report.sent, report.failed) == (2, 0)
        assert sorted(r[0][0] for r in server.inbox.received) == [
            "pricing@orderpulse.example",
            "warehouse@orderpulse.example",
        ]
        first = _row(conn, ids[0])
        assert first == {**first, "delivery": "sent", "sent_at": later, "attempts": 4}
        assert first["last_error"] is None
        assert deliver_pending(conn, CFG, mailer, later).sent == 0
    finally:
        server.stop()


def test_wrong_smtp_password_fails_without_showing_it(
    conn, smtp: SmtpServer, tmp_path: Path
) -> None:
    settings = _mailer(tmp_path, smtp.port, smtp_password="not-the-password-4412").settings
    [alert_id] = raise_alerts(conn, [Alert("run_failure", "job x failed", {}, "job=x")], CFG, NOW)
    report = deliver_pending(conn, CFG, Mailer(settings, attempts=1), NOW)
    assert report.failed == 1 and not smtp.inbox.received
    error = _row(conn, alert_id)["last_error"]
    assert "SMTPAuthenticationError" in error and "not-the-password-4412" not in error


def test_no_smtp_configured_writes_an_eml_to_the_outbox(conn, tmp_path: Path) -> None:
    mailer = _mailer(tmp_path, None)
    csv = Attachment("reconciliation_2026-11.csv", "platform,orders\ntaobao,12\n'=SUM(A1),1\n")
    alert = Alert(
        "monthly_reconciliation", "Reconciliation 2026-11", {"platforms": 1}, "month=2026-11",
        attachments=(csv,),
    )  # fmt: skip
    [alert_id] = raise_alerts(conn, [alert], CFG, NOW)
    report = deliver_pending(conn, CFG, mailer, NOW)
    assert (report.outbox, report.sent) == (1, 0)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["Subject"] == "[OrderPulse info] Reconciliation 2026-11"
    assert msg["To"] == "finance@orderpulse.example"
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "reconciliation_2026-11.csv"
    assert att.get_content().lstrip("\ufeff").startswith("platform,orders")
    assert _row(conn, alert_id)["delivery"] == "outbox"


@pytest.fixture()
def robot() -> Iterator[tuple[RobotReceiver, str]]:
    receiver = RobotReceiver("tok-123", "SECxyz/+=robot", clock=lambda: NOW.timestamp())
    running = serve_app(receiver.app, "robot")
    yield receiver, receiver.webhook_url(running.base_url)
    running.stop()


def test_urgent_alert_reaches_the_signed_robot_and_a_forged_one_is_refused(
    conn, tmp_path: Path, robot
) -> None:
    receiver, url = robot
    mailer = _mailer(tmp_path, None, robot_webhook_url=url, robot_secret=receiver.secret)
    urgent = Alert("order_pulse", "pdd silent for 95 minutes", {"channel": "pdd"}, "channel=pdd")
    [alert_id] = raise_alerts(conn, [urgent], CFG, NOW)
    report = deliver_pending(conn, CFG, mailer, NOW)
    assert (report.outbox, report.robot_sent, report.robot_failed) == (1, 1, 0)
    [message] = receiver.messages
    assert message["msgtype"] == "markdown"
    assert "pdd silent for 95 minutes" in message["markdown"]["text"]
    assert _row(conn, alert_id)["robot_delivery"] == "sent"

    # a forger without the secret, and a replay two hours late, are both refused
    with pytest.raises(RobotError, match="310000.*sign not match"):
        post_markdown(url, "guessed-secret", "x", "forged", NOW)
    with pytest.raises(RobotError, match="invalid timestamp"):
        post_markdown(url, receiver.secret, "x", "replayed", NOW - timedelta(hours=2))
    assert receiver.refused == 2 and len(receiver.messages) == 1


def test_without_robot_env_the_sandbox_robot_in_sandbox_json_is_used(conn, tmp_path: Path) -> None:
    import json

    from sandbox.robot_receiver import start_robot_receiver

    apps: dict = {}
    entry = start_robot_receiver(apps)
    try:
        (tmp_path / "sandbox.json").write_text(json.dumps({"robot": entry}), encoding="utf-8")
        oversold = Alert("inventory_oversold", "SKU-7 oversold by 3", {"sku": "SKU-7"}, "sku=7")
        apps["robot"].app.state.receiver.clock = NOW.timestamp
        [alert_id] = raise_alerts(conn, [oversold], CFG, NOW)
        # recorded as of a later logical time (a demo replaying a world), signed at send time
        later = NOW + timedelta(days=3)
        report = deliver_pending(conn, CFG, _mailer(tmp_path, None), later)
        assert report.robot_sent == 1, report.errors
        assert _row(conn, alert_id)["robot_delivery"] == "sent"
        [message] = apps["robot"].app.state.receiver.messages
        assert "SKU-7 oversold by 3" in message["markdown"]["text"]
    finally:
        apps["robot"].stop()


def test_a_circuit_breaker_row_written_by_routing_reaches_its_owner_and_the_robot(
    conn, tmp_path: Path, robot
) -> None:
    from fulfillment.ops_schema import ensure_ops_tables

    receiver, url = robot
    ensure_ops_tables(conn)
    # as fulfillment/routing_store.py writes it: no recipients, no robot state
    conn.execute(
        "insert into ops.alerts (rule, severity, subject, facts, recipients, created_at, "
        "delivery, dedup_key) values ('routing_circuit_breaker', 'warning', "
        "'Warehouse WH-WEST dropped out of routing: stock_sync_stale', '{}', '{}', %s, "
        "'pending', 'routing_circuit_breaker:WH-WEST:stock_sync_stale:2026-11-20')",
        [NOW],
    )
    mailer = _mailer(tmp_path, None, robot_webhook_url=url, robot_secret=receiver.secret)
    report = deliver_pending(conn, CFG, mailer, NOW)
    assert (report.outbox, report.robot_sent) == (1, 1)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["To"] == "warehouse@orderpulse.example"
    assert "WH-WEST" in receiver.messages[0]["markdown"]["text"]
    assert deliver_pending(conn, CFG, mailer, NOW).robot_sent == 0  # once


def test_starttls_with_login_is_verified_against_the_configured_ca(conn, tmp_path: Path) -> None:
    import ssl

    cert_file, key_file = self_signed(tmp_path, "smtp")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    server = SmtpServer()
    server.controller = Controller(
        server.inbox,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=_authenticator,
        tls_context=server_tls,
        require_starttls=True,  # AUTH and MAIL only after STARTTLS
        auth_required=True,
    )
    server.controller.start()
    try:
        raise_alerts(conn, [Alert("run_failure", "job y failed", {}, "job=y")], CFG, NOW)
        # without the CA the certificate is refused: nothing sent, the failure recorded
        unverified = _mailer(tmp_path, server.port, smtp_starttls=True)
        report = deliver_pending(conn, CFG, unverified, NOW)
        assert report.failed == 1 and "CERTIFICATE_VERIFY_FAILED" in report.errors[0]
        attempts = conn.execute("select attempts from ops.alerts").fetchone()[0]
        assert attempts == 1  # not retried: a refused certificate stays refused
        trusted = _mailer(tmp_path, server.port, smtp_starttls=True, smtp_ca_file=cert_file)
        assert deliver_pending(conn, CFG, trusted, NOW).sent == 1
        [(rcpts, msg)] = server.inbox.received
        assert rcpts == ["data-eng@orderpulse.example"]
    finally:
        server.stop()


def test_a_long_diff_report_is_cut_in_the_body_and_attached_whole(conn, tmp_path: Path) -> None:
    diff = [
        {"sku": f"SKU-{i}", "warehouse": "WH-E", "platform_qty": 10, "wms_qty": 2, "diff": 8}
        for i in range(45)
    ]
    diff[0]["sku"] = "=cmd|' /C calc'!A0"  # a cell a spreadsheet would run
    alert = Alert("stock_mismatch", "45 SKUs off by more than 3", {"skus": 45}, "wh=WH-E",
                  table=diff)  # fmt: skip
    raise_alerts(conn, [alert], CFG, NOW)
    deliver_pending(conn, CFG, _mailer(tmp_path, None), NOW)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "first 30 of 45 rows" in html and "SKU-29" in html and "SKU-30<" not in html
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "detail.csv"
    lines = att.get_content().lstrip("\ufeff").splitlines()
    assert len(lines) == 46 and lines[0] == "sku,warehouse,platform_qty,wms_qty,diff"
    assert lines[1].startswith("'=cmd")  # escaped: text, not a formula
