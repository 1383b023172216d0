"""Alert emails: build the message (HTML with a plain-text part, the chart inline as a PNG) and
send it over SMTP with retries, or write it to the outbox when no SMTP server is configured.

SMTP settings come from the environment (`kernel.settings.Settings`): ORDERPULSE_SMTP_HOST,
_PORT, _STARTTLS, _USER, _PASSWORD, _FROM. The password is a SecretStr and never appears in a
log line, an exception text or `ops.alerts.last_error`.
"""

from __future__ import annotations

import csv
import html
import io
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from kernel.settings import Settings
from kernel.timezones import BEIJING

_SEVERITY_COLOURS = {"info": "#2e86c1", "warning": "#d68910", "critical": "#c0392b"}
DETAIL_ROWS_IN_BODY = 30  # a longer detail table is attached in full as detail.csv


@dataclass(frozen=True)
class StoredAlert:
    """An `ops.alerts` row as delivery reads it back."""

    id: int
    rule: str
    severity: str
    subject: str
    facts: dict[str, Any]
    recipients: list[str]
    created_at: datetime
    dedup_key: str | None = None
    chart: dict[str, Any] | None = None
    table: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class SendResult:
    delivery: str  # 'sent' (SMTP) | 'outbox' (an .eml file)
    attempts: int
    where: str  # the SMTP host or the .eml path


class DeliveryFailed(RuntimeError):
    """SMTP failed on every attempt; the message carries no secret."""

    def __init__(self, message: str, attempts: int, server_down: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.server_down = server_down  # every retry failed: later messages would fail too


# -- the message -----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, float):
        # amounts in full (no 1.235e+05 for a month's takings), rates to 4 significant digits
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, dict | list):
        return ", ".join(map(str, value.items() if isinstance(value, dict) else value))
    return "" if value is None else str(value)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _html_table(rows: list[dict[str, Any]]) -> str:
    cols = _columns(rows)
    style = 'style="border:1px solid #ccc;padding:3px 8px;text-align:left"'
    head = "".join(f"<th {style}>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td {style}>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f'<table style="border-collapse:collapse">{head and f"<tr>{head}</tr>"}{body}</table>'


def _text_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    cols = _columns(rows)
    return tabulate([[_cell(r.get(c)) for c in cols] for r in rows], headers=cols)


def csv_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text starting with = + - @ (or a tab/CR) is
    prefixed with ' so it is not run as a formula; numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(r.get(c)) for c in columns] for r in rows)
    return buf.getvalue()


def build_message(alert: StoredAlert, sender: str) -> EmailMessage:
    """One alert as an email: plain text and HTML alternatives, the chart inline (cid)."""
    msg = EmailMessage()
    msg["Subject"] = f"[OrderPulse {alert.severity}] {alert.subject}"
    msg["From"] = sender
    msg["To"] = ", ".join(alert.recipients)
    msg["Date"] = format_datetime(alert.created_at)
    msg["Message-ID"] = make_msgid(f"alert{alert.id}", domain="orderpulse.local")
    msg["X-OrderPulse-Alert"] = f"{alert.id} {alert.rule}"

    facts = [{"fact": k, "value": v} for k, v in alert.facts.items()]
    when = alert.created_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M Beijing time")
    text = [alert.subject, "", f"rule: {alert.rule}   severity: {alert.severity}   at: {when}"]
    if facts:
        text += ["", _text_table(facts)]
    table = alert.table or []
    shown = table[:DETAIL_ROWS_IN_BODY]
    more = ""
    if len(table) > len(shown):
        more = f" (first {len(shown)} of {len(table)} rows; all in detail.csv)"
    if shown:
        text += ["", f"Detail{more}:", _text_table(shown)]
    if alert.chart:
        text += ["", f"Chart: {alert.chart.get('title', '')} (in the HTML part)"]
    text += ["", "-- OrderPulse alerts (rules: config/alerts.yaml)"]
    msg.set_content("\n".join(text))

    chart_cid = make_msgid("chart", domain="orderpulse.local") if alert.chart else None
    colour = _SEVERITY_COLOURS.get(alert.severity, "#555")
    parts = [
        '<html><body style="font-family:sans-serif">',
        f'<h2 style="color:{colour}">{html.escape(alert.subject)}</h2>',
        f"<p>rule <b>{html.escape(alert.rule)}</b> · severity "
        f'<b style="color:{colour}">{html.escape(alert.severity)}</b> · {html.escape(when)}</p>',
    ]
    if facts:
        parts.append(_html_table(facts))
    if chart_cid:
        parts.append(f'<p><img src="cid:{chart_cid[1:-1]}" alt="chart"></p>')
    if shown:
        parts += [f"<h3>Detail{html.escape(more)}</h3>", _html_table(shown)]
    parts.append('<p style="color:#888">OrderPulse alerts · rules in config/alerts.yaml</p>')
    parts.append("</body></html>")
    msg.add_alternative("".join(parts), subtype="html")

    if chart_cid:
        from quality.alerts import Chart
        from quality.charts import render_png

        png = render_png(Chart(**alert.chart))
        msg.get_payload()[1].add_related(png, "image", "png", cid=chart_cid, filename="chart.png")
    attachments = list(alert.attachments or [])
    if more:
        attachments.append({"filename": "detail.csv", "content": to_csv(table, _columns(table))})
    for item in attachments:
        subtype = item.get("mime_type", "text/csv").partition("/")[2] or "plain"
        # a BOM: Excel opens Chinese CSV text as UTF-8 only with it
        text_ = ("\ufeff" if subtype == "csv" else "") + item["content"]
        msg.add_attachment(text_, subtype=subtype, charset="utf-8", filename=item["filename"])
    return msg


# -- sending ---------------------------------------------------------------------------------


_PERMANENT = (
    ssl.SSLCertVerificationError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
)


class Mailer:
    """Sends messages over SMTP (retrying with backoff), or writes `.eml` files to the outbox
    when `settings.smtp_host` is unset. Consecutive sends share one SMTP session until
    `close()` (a failed send drops it; the retry reconnects)."""

    def __init__(
        self,
        settings: Settings | None = None,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        # the send time the group robot's signature carries (the platform refuses > 1 h off),
        # which is not the alert's own time
        self.clock = clock or (lambda: datetime.now(UTC))
        self._smtp: smtplib.SMTP | None = None
        self._tls: ssl.SSLContext | None = None

    @property
    def sender(self) -> str:
        return self.settings.smtp_from

    def send(self, msg: EmailMessage, name: str = "alert") -> SendResult:
        if not self.settings.smtp_host:
            return SendResult("outbox", 1, str(self._write_outbox(msg, name)))
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=30),
            # a refused certificate, login or recipient will not fix itself by retrying
            retry=retry_if_exception_type((OSError, smtplib.SMTPException))
            & retry_if_not_exception_type(_PERMANENT),
            reraise=False,
        )
        try:
            retrying(self._smtp_send, msg)
        except RetryError as err:
            cause = err.last_attempt.exception()
            raise DeliveryFailed(self._describe(cause), self.attempts, server_down=True) from None
        except Exception as err:  # not retryable (e.g. a malformed address)
            raise DeliveryFailed(self._describe(err), 1) from None
        attempts = retrying.statistics.get("attempt_number", 1)
        return SendResult("sent", attempts, self.settings.smtp_host)

    def _smtp_send(self, msg: EmailMessage) -> None:
        try:
            self._connection().send_message(msg)
        except BaseException:
            self.close()  # the next attempt starts on a fresh connection
            raise

    def _connection(self) -> smtplib.SMTP:
        """One logged-in SMTP session for a whole delivery round (closed by `close()`)."""
        if self._smtp is not None:
            return self._smtp
        s = self.settings
        if self._tls is None:
            # certificates are always verified: the system CAs, or the private CA in settings
            cafile = str(s.smtp_ca_file) if s.smtp_ca_file else None
            self._tls = ssl.create_default_context(cafile=cafile)
        timeout = s.smtp_timeout_seconds
        if s.smtp_port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=timeout, context=self._tls
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        try:
            smtp.ehlo()
            if s.smtp_port != 465 and s.smtp_starttls:
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if s.smtp_user:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_user, password)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _describe(self, err: BaseException | None) -> str:
        """The error for logs and `last_error`: type, text, where; never the password."""
        text = f"{type(err).__name__}: {err}" if err else "unknown error"
        text = f"{text} (SMTP {self.settings.smtp_host}:{self.settings.smtp_port})"
        secret = self.settings.smtp_password
        if secret and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "**********")
        return text[:500]

    def _write_outbox(self, msg: EmailMessage, name: str) -> Path:
        outbox = self.settings.outbox
        outbox.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        path = outbox / f"{safe}.eml"
        tmp = path.with_suffix(".eml.tmp")
        tmp.write_bytes(msg.as_bytes())
        tmp.replace(path)  # a reader never sees half a message
        return path
