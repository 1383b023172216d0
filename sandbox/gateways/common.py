"""What every gateway shares: the state of an order at request time, units and time formats,
masking and the sandbox's receiver "encryption", tracking numbers, paging, JSON responses.

Nothing here is a platform protocol: signing, URL shapes, field names and error shapes live in
each platform's module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qsl, quote

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from sandbox.gateways.store import Late, effective_time, from_epoch_s
from sandbox.model import CENT, Order

try:  # orjson is much faster on million-order pulls; the stdlib is the fallback
    import orjson

    def dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: object) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China since 1991
BJ_FORMAT = "%Y-%m-%d %H:%M:%S"


# -- time and money ----------------------------------------------------------------------------
def bj(moment: datetime | None) -> str | None:
    """'yyyy-MM-dd HH:mm:ss' in Beijing time (TOP, JD, PDD, Youzan)."""
    return None if moment is None else moment.astimezone(BEIJING).strftime(BJ_FORMAT)


def parse_bj(text: str) -> datetime:
    """Parse 'yyyy-MM-dd HH:mm:ss' (Beijing time); JD's '.SSS+0800' tail is accepted."""
    text = text.strip()
    if len(text) > 19:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f%z")
    return datetime.strptime(text, BJ_FORMAT).replace(tzinfo=BEIJING)


def unix_s(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() // 1)


def unix_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() // 1) * 1000


def yuan(amount: Decimal) -> str:
    """Yuan as a 2-decimal string ('12.30')."""
    return str(amount.quantize(CENT, ROUND_HALF_UP))


def yuan_num(amount: Decimal) -> float:
    """Yuan as a JSON number (PDD)."""
    return float(amount.quantize(CENT, ROUND_HALF_UP))


def fen(amount: Decimal) -> int:
    """Integer fen."""
    return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))


def maybe_int(text: str) -> int | str:
    """A numeric id that fits int64 as an integer (JSON number), anything else unchanged."""
    return int(text) if text.isdigit() and int(text) < 2**63 else text


# -- the order as seen at request time -----------------------------------------------------------
@dataclass(frozen=True)
class OrderState:
    """An order as a platform shows it at one moment: only what happened up to `modified`."""

    order: Order
    modified: datetime
    unified: str
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    refunded_at: datetime | None
    returned_at: datetime | None
    rejected_at: datetime | None

    @property
    def closed_at(self) -> datetime | None:
        if self.unified != "closed":
            return None
        return self.cancelled_at or self.refunded_at

    @property
    def after_sale(self) -> str | None:
        """'refund' | 'return' | 'reject' when the order is in after-sale, else None."""
        if self.unified != "after_sale":
            return None
        if self.rejected_at:
            return "reject"
        if self.returned_at:
            return "return"
        return "refund"

    @property
    def after_sale_at(self) -> datetime | None:
        kind = self.after_sale
        return {
            "refund": self.refunded_at,
            "return": self.returned_at,
            "reject": self.rejected_at,
        }.get(kind or "")

    @property
    def paid(self) -> bool:
        return self.paid_at is not None

    @property
    def shipped(self) -> bool:
        return self.shipped_at is not None


def order_state(order: Order, modified_s: int, late: Late | None = None) -> OrderState:
    """The state of `order` once every change up to its version at `modified_s` applied (a
    late status update applies only once it is visible, but keeps its real time)."""
    modified = from_epoch_s(modified_s)
    horizon = modified + timedelta(seconds=1)  # versions are whole seconds: include the second
    firsts: dict[str, datetime] = {}
    hidden = None
    for event in order.events:
        if effective_time(event.at, event.type, late) >= horizon:
            if event.at < horizon:
                hidden = event
            continue
        firsts.setdefault(event.type, event.at)
    paid_at = order.paid_at
    if paid_at is not None and effective_time(paid_at, "pay", late) >= horizon:
        paid_at = None
    view = order
    late_pay = paid_at is None and order.paid_at is not None and order.paid_at < horizon
    if hidden is not None or late_pay:
        # the platform does not show the late event yet: judge the status without it
        view = order.model_copy(
            update={"events": [e for e in order.events if e is not hidden], "paid_at": paid_at}
        )
    return OrderState(
        order=order,
        modified=modified,
        unified=view.status_at(horizon - timedelta(microseconds=1)),
        paid_at=paid_at,
        shipped_at=firsts.get("ship"),
        delivered_at=firsts.get("deliver"),
        cancelled_at=firsts.get("cancel"),
        refunded_at=firsts.get("refund"),
        returned_at=firsts.get("return"),
        rejected_at=firsts.get("reject"),
    )


def split_coupons(order: Order) -> tuple[Decimal, Decimal]:
    """(platform-funded, shop-funded) discount totals in yuan."""
    platform = sum((c.amount for c in order.coupons if c.issuer == "platform"), Decimal(0))
    shop = sum((c.amount for c in order.coupons if c.issuer == "shop"), Decimal(0))
    return platform.quantize(CENT), shop.quantize(CENT)


def line_discounts(order: Order) -> list[Decimal]:
    """The order's discounts spread over its lines by line value (the last line takes the
    rounding rest), so line payments add up to the order's goods value minus discounts."""
    total = order.discount_amount
    values = [(i.price * i.qty).quantize(CENT) for i in order.items]
    goods = sum(values, Decimal(0))
    if not total or not goods:
        return [Decimal("0.00")] * len(values)
    shares = [(total * v / goods).quantize(CENT, ROUND_HALF_UP) for v in values[:-1]]
    return [*shares, (total - sum(shares, Decimal(0))).quantize(CENT)]


# -- logistics ---------------------------------------------------------------------------------
CARRIERS = (
    ("SF", "顺丰速运", "SF", 12),
    ("ZTO", "中通快递", "7", 12),
    ("YTO", "圆通速递", "YT", 13),
    ("YUNDA", "韵达快递", "43", 11),
    ("STO", "申通快递", "77", 11),
    ("EMS", "邮政EMS", "11", 11),
    ("JD", "京东物流", "JDV", 12),
)
REMOTE_PROVINCES = ("新疆", "西藏", "青海")


def shipment(order: Order) -> tuple[str, str, str]:
    """(carrier code, carrier name, tracking number) of a shipped order, derived from the order
    number so every request (and the push feed) shows the same waybill. Remote regions ship EMS."""
    digest = hashlib.sha256(f"{order.channel}:{order.platform_order_no}".encode()).digest()
    pick = digest[0] % len(CARRIERS)
    if order.receiver.province.startswith(REMOTE_PROVINCES):
        pick = 5
    code, name, prefix, digits = CARRIERS[pick]
    number = str(int.from_bytes(digest[1:9], "big")).zfill(20)[-digits:]
    return code, name, prefix + number


# -- receiver privacy --------------------------------------------------------------------------
def mask_name(name: str) -> str:
    return name[:1] + "*" * min(3, max(1, len(name) - 1))


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "*" * len(digits)


def mask_address(address: str) -> str:
    return address[:3] + "*" * max(4, len(address) - 3) if address else ""


class Sealer:
    """The sandbox's stand-in for a platform's receiver encryption: deterministic (the same
    order renders the same bytes on every pull, so content hashes stay stable), authenticated
    and reversible only by the gateway that holds the key. Not real cryptography; the point is
    that a client cannot read the value without calling the platform's decrypt API."""

    def __init__(self, key: str, prefix: str = "~", suffix: str = "~") -> None:
        root = hashlib.sha256(key.encode()).digest()
        self._nonce_key = hashlib.blake2b(root, digest_size=32, person=b"nonce").digest()
        self._stream_key = hashlib.blake2b(root, digest_size=32, person=b"stream").digest()
        self._tag_key = hashlib.blake2b(root, digest_size=32, person=b"tag").digest()
        self.prefix = prefix
        self.suffix = suffix

    def _xor(self, nonce: bytes, data: bytes) -> bytes:
        stream = b"".join(
            hashlib.blake2b(nonce + bytes([k]), key=self._stream_key).digest()
            for k in range(len(data) // 64 + 1)
        )[: len(data)]
        mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")
        return mixed.to_bytes(len(data), "big")

    def _tag(self, nonce: bytes, body: bytes) -> bytes:
        return hashlib.blake2b(nonce + body, key=self._tag_key, digest_size=6).digest()

    def seal(self, plain: str) -> str:
        data = plain.encode()
        nonce = hashlib.blake2b(data, key=self._nonce_key, digest_size=8).digest()
        body = self._xor(nonce, data)
        token = base64.b64encode(nonce + body + self._tag(nonce, body)).decode()
        return f"{self.prefix}{token}{self.suffix}"

    def open(self, sealed: str) -> str | None:
        """The clear text, or None when `sealed` is not this gateway's ciphertext."""
        if not (sealed.startswith(self.prefix) and sealed.endswith(self.suffix)):
            return None
        token = sealed[len(self.prefix) : len(sealed) - len(self.suffix) or None]
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            return None
        if len(raw) < 14:
            return None
        nonce, body, tag = raw[:8], raw[8:-6], raw[-6:]
        if not hmac.compare_digest(tag, self._tag(nonce, body)):
            return None
        try:
            return self._xor(nonce, body).decode()
        except UnicodeDecodeError:
            return None


# -- requests and responses ----------------------------------------------------------------------
def json_response(
    payload: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


async def request_params(request: Request) -> dict[str, str]:
    """Query string plus an urlencoded form body (no multipart parser needed), form wins."""
    params = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if request.method == "POST" and "application/x-www-form-urlencoded" in ctype:
        body = (await request.body()).decode()
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


# -- push messages (each platform module builds its own; sandbox.push sends them) ----------------
PushBody = tuple[bytes, dict[str, str]]  # (request body, headers) of one signed push message
# an order's latest change as a push announces it (`sandbox.push.change_kind`); each platform
# maps every kind to its own message type
CHANGE_KINDS = ("created", "pay", "ship", "deliver", "cancel", "refund", "after_sale", "modified")
FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}
JSON_HEADERS = {"content-type": "application/json"}


def compact_json(obj: object) -> str:
    """JSON as the platforms send it inside messages: no spaces, Chinese unescaped."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def form_body(fields: Mapping[str, object]) -> bytes:
    """An urlencoded form body, every character but the unreserved ones escaped."""
    return "&".join(
        f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in fields.items()
    ).encode()


def page_slice(idx: np.ndarray, start: int, size: int, *, duplicates: bool) -> list[int]:
    """Rows [start, start+size) of a window; with the duplicates fault a page after the first
    also repeats the row before it."""
    rows = idx[start : start + size].tolist()
    if duplicates and start > 0 and start <= len(idx):
        rows.insert(0, int(idx[start - 1]))
    return rows


def descending(idx: np.ndarray) -> np.ndarray:
    return idx[::-1]


def add_month(moment: datetime) -> datetime:
    """The same wall time one calendar month later (day clipped to the month's end)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def now_utc() -> datetime:
    return datetime.now(UTC)


def chunks(items: Iterable, n: int) -> Iterable[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def stable_number(text: str, digits: int) -> int:
    """A stable pseudo-id of `digits` digits for `text` (item ids, sku ids, shop ids)."""
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return 10 ** (digits - 1) + value % (9 * 10 ** (digits - 1))


def customs_fields(order: Order, *, camel: bool = False) -> dict | None:
    """The cross-border customs block (declared value as a yuan string on every platform),
    or None for a domestic order without customs data."""
    if order.customs is None:
        return None
    data = order.customs.model_dump(exclude_none=True)
    out: dict[str, object] = {}
    for key, value in data.items():
        if camel:
            head, *rest = key.split("_")
            key = head + "".join(part.title() for part in rest)
        out[key] = yuan(value) if isinstance(value, Decimal) else value
    return out


def drop_none(mapping: dict) -> dict:
    """The platforms omit unset fields rather than sending null."""
    return {k: v for k, v in mapping.items() if v is not None}


def receiver_plain(order: Order) -> dict[str, str]:
    r = order.receiver
    return {"name": r.name, "phone": r.phone, "address": r.address}
