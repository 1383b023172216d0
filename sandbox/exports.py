"""Daily CSV exports as the regional platforms and the offline stores produce them.

A platform without an order API drops one file per day, `order_YYYYMMDD.csv`, holding every order
that *changed* that day (local date, Asia/Shanghai) in its state at the end of that day: an order
paid on the 20th and shipped on the 21st is in both files, and the last file that holds it carries
its final state. One row per order item; the order-level columns are repeated on every item row of
the order (the layout of Taobao-style "宝贝明细" exports).

The two regional platforms disagree on everything a file can disagree on:

- regional_a: UTF-8 on even days (by date ordinal) and UTF-8 with BOM on odd days; headers
  订单编号, 店铺, 下单时间, … 更新时间; times `2026/11/20 10:00:00`; amounts `1,299.00` (a
  thousands separator, so the field is quoted).
- regional_b: GBK (GB18030 when a rare name needs it); headers 订单号, 门店, 创建时间, …
  最后修改时间; times `2026-11-20 10:00` (minutes only); amounts `￥59.9` (fullwidth yuan sign,
  shortest form: GBK has no `¥`).

Fields holding commas, quotes or newlines (addresses, buyer notes) are quoted the CSV way.
Offline stores use the POS import template (`pos_YYYYMMDD.csv`, UTF-8 with BOM), whose header is
also shipped as `config/templates/pos_orders.csv`.

A corrected re-export of a day is simply the day rendered again from the orders as they are now,
replacing the file (`reexport_day`): the platform fixed its data and re-sent the file.
The module never imports `connectors`: the connector parses these files on its own.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.channels import SFTP_CHANNELS
from sandbox.model import Event, Order

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
EXPORT_CHANNELS = SFTP_CHANNELS  # the channels config/channels.yaml reads over SFTP


@dataclass(frozen=True)
class ExportFormat:
    """How one platform writes its export: header per field, time and amount styles."""

    headers: dict[str, str]  # neutral field -> the platform's header
    time_format: str
    amount_style: str  # "thousands" | "yuan_sign" | "plain"
    statuses: dict[str, str]  # unified status -> the platform's word
    # codec (as Python spells it) on even and on odd days (by date ordinal)
    encodings: tuple[str, str] = ("utf-8-sig", "utf-8-sig")
    file_prefix: str = "order_"


_REGIONAL_A = ExportFormat(
    headers={
        "order_no": "订单编号",
        "shop": "店铺",
        "created": "下单时间",
        "paid": "付款时间",
        "buyer": "买家",
        "receiver": "收货人",
        "phone": "手机",
        "province": "省",
        "city": "市",
        "district": "区",
        "address": "详细地址",
        "sku": "商品编码",
        "title": "商品名称",
        "qty": "数量",
        "price": "单价",
        "freight": "运费",
        "shop_discount": "店铺优惠",
        "platform_discount": "平台优惠",
        "paid_amount": "实付金额",
        "status": "订单状态",
        "buyer_note": "买家留言",
        "seller_note": "卖家备注",
        "modified": "更新时间",
    },
    time_format="%Y/%m/%d %H:%M:%S",
    amount_style="thousands",
    statuses={
        "awaiting_payment": "等待买家付款",
        "paid_pending_review": "等待卖家发货",
        "in_transit": "卖家已发货",
        "delivered": "交易成功",
        "after_sale": "售后中",
        "closed": "交易关闭",
    },
    encodings=("utf-8", "utf-8-sig"),
)

_REGIONAL_B = ExportFormat(
    headers={
        "order_no": "订单号",
        "shop": "门店",
        "created": "创建时间",
        "paid": "支付时间",
        "buyer": "买家账号",
        "receiver": "收件人",
        "phone": "联系电话",
        "province": "省份",
        "city": "城市",
        "district": "区县",
        "address": "收货地址",
        "sku": "SKU编码",
        "title": "商品",
        "qty": "购买数量",
        "price": "商品单价",
        "freight": "邮费",
        "shop_discount": "商家优惠",
        "platform_discount": "平台补贴",
        "paid_amount": "订单实付",
        "status": "订单状态",
        "buyer_note": "备注",
        "modified": "最后修改时间",
    },
    time_format="%Y-%m-%d %H:%M",
    amount_style="yuan_sign",
    statuses={
        "awaiting_payment": "待付款",
        "paid_pending_review": "待发货",
        "in_transit": "已发货",
        "delivered": "已签收",
        "after_sale": "退款/售后",
        "closed": "已取消",
    },
    encodings=("gbk", "gbk"),
)

# The offline-store import template (config/templates/pos_orders.csv has the same header).
POS_FORMAT = ExportFormat(
    headers={
        "order_no": "小票号",
        "shop": "门店编码",
        "created": "下单时间",
        "paid": "付款时间",
        "buyer": "会员编号",
        "receiver": "顾客姓名",
        "phone": "顾客手机",
        "province": "省",
        "city": "市",
        "district": "区",
        "address": "地址",
        "sku": "商品编码",
        "title": "商品名称",
        "qty": "数量",
        "price": "单价",
        "freight": "运费",
        "discount": "优惠金额",
        "paid_amount": "实收金额",
        "status": "订单状态",
        "buyer_note": "备注",
        "modified": "更新时间",
    },
    time_format="%Y-%m-%d %H:%M:%S",
    amount_style="plain",
    statuses={
        "awaiting_payment": "待付款",
        "paid_pending_review": "已付款",
        "in_transit": "配送中",
        "delivered": "已完成",
        "after_sale": "已退货",
        "closed": "已取消",
    },
    file_prefix="pos_",
)

FORMATS = {"regional_a": _REGIONAL_A, "regional_b": _REGIONAL_B, "pos": POS_FORMAT}


def orders_of(world: Any) -> list[Order]:
    """The orders of a world (anything with `.orders`) or of a plain iterable of orders."""
    return list(getattr(world, "orders", world))


def file_name(day: date, channel: str = "regional_a") -> str:
    return f"{FORMATS[channel].file_prefix}{day:%Y%m%d}.csv"


def default_encoding(channel: str, day: date) -> str:
    """The encoding the platform uses on `day` (codec name as Python spells it); the POS
    template and unknown channels: UTF-8 with BOM, which Excel opens correctly."""
    fmt = FORMATS.get(channel)
    return fmt.encodings[day.toordinal() % 2] if fmt else "utf-8-sig"


# -- which orders go into which day ------------------------------------------------------------
# A late status update (World.late_updates) reaches the export only on the day it became visible.
Late = Mapping[tuple[str, str], Any]


def _late_of(order: Order, late: Late | None) -> Any:
    return late.get((order.channel, order.platform_order_no)) if late else None


def _is_late(event: Event, lu: Any) -> bool:
    return lu is not None and event.type == lu.event_type and event.at == lu.happened_at


def _change_times(order: Order, late: Late | None = None) -> list[datetime]:
    lu = _late_of(order, late)
    times = [order.created_at, *(lu.visible_at if _is_late(e, lu) else e.at for e in order.events)]
    if order.paid_at is not None:
        times.append(order.paid_at)
    return times


def _as_visible(order: Order, at: datetime, late: Late | None) -> Order:
    """The order as its platform shows it at `at` (a late event stays hidden until visible)."""
    lu = _late_of(order, late)
    if lu is None or lu.visible_at <= at:
        return order
    events = [e for e in order.events if not _is_late(e, lu)]
    paid_at = None if lu.event_type == "pay" else order.paid_at
    return order.model_copy(update={"events": events, "paid_at": paid_at})


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), LOCAL_TZ) - timedelta(microseconds=1)


def _snapshot_time(day: date, as_of: datetime | None) -> datetime:
    end = _day_end(day)
    return end if as_of is None else min(end, as_of)


def days_by_channel(
    orders: Iterable[Order],
    channel: str,
    as_of: datetime | None = None,
    late: Late | None = None,
) -> dict[date, list[Order]]:
    """For each local day, the orders of `channel` that changed that day (up to `as_of`)."""
    out: dict[date, list[Order]] = {}
    for order in orders:
        if order.channel != channel:
            continue
        times = [t for t in _change_times(order, late) if as_of is None or t <= as_of]
        days = {t.astimezone(LOCAL_TZ).date() for t in times}
        for day in days:
            out.setdefault(day, []).append(order)
    return dict(sorted(out.items()))


# -- rendering ----------------------------------------------------------------------------------
def _amount(value: Decimal, style: str) -> str:
    value = value.quantize(Decimal("0.01"))
    if style == "thousands":
        return f"{value:,.2f}"
    if style == "yuan_sign":
        text = format(value.normalize(), "f")
        return "￥" + text
    return f"{value:.2f}"


def _time(value: datetime | None, fmt: str) -> str:
    return "" if value is None else value.astimezone(LOCAL_TZ).strftime(fmt)


def _order_rows(
    order: Order, at: datetime, fmt: ExportFormat, late: Late | None
) -> list[dict[str, str]]:
    modified = max(t for t in _change_times(order, late) if t <= at)
    order = _as_visible(order, at, late)
    paid = order.paid_at if order.paid_at is not None and order.paid_at <= at else None
    shop_discount = sum((c.amount for c in order.coupons if c.issuer == "shop"), Decimal(0))
    platform_discount = sum((c.amount for c in order.coupons if c.issuer == "platform"), Decimal(0))
    common = {
        "order_no": order.platform_order_no,
        "shop": order.shop_id,
        "created": _time(order.created_at, fmt.time_format),
        "paid": _time(paid, fmt.time_format),
        "buyer": order.buyer_id,
        "receiver": order.receiver.name,
        "phone": order.receiver.phone,
        "province": order.receiver.province,
        "city": order.receiver.city,
        "district": order.receiver.district,
        "address": order.receiver.address,
        "freight": _amount(order.freight, fmt.amount_style),
        "shop_discount": _amount(shop_discount, fmt.amount_style),
        "platform_discount": _amount(platform_discount, fmt.amount_style),
        "discount": _amount(order.discount_amount, fmt.amount_style),
        "paid_amount": _amount(order.paid_amount, fmt.amount_style),
        "status": fmt.statuses[order.status_at(at)],
        "buyer_note": order.buyer_note or "",
        "seller_note": order.seller_note or "",
        "modified": _time(modified, fmt.time_format),
    }
    return [
        {
            **common,
            "sku": item.sku,
            "title": item.title or "",
            "qty": str(item.qty),
            "price": _amount(item.price, fmt.amount_style),
        }
        for item in order.items
    ]


def render_csv(
    orders: Sequence[Order],
    channel: str,
    day: date,
    *,
    as_of: datetime | None = None,
    late: Late | None = None,
) -> str:
    """The text of `channel`'s export for `day`: the orders that changed that day."""
    fmt = FORMATS[channel]
    at = _snapshot_time(day, as_of)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(fmt.headers.values())
    chosen = days_by_channel(orders, channel, as_of, late).get(day, [])
    for order in sorted(chosen, key=lambda o: (o.created_at, o.platform_order_no)):
        for row in _order_rows(order, at, fmt, late):
            writer.writerow(row[field] for field in fmt.headers)
    return buf.getvalue()


def encode(text: str, encoding: str) -> tuple[bytes, str]:
    """Encode, widening GBK to GB18030 when a character (a rare name) is outside GBK."""
    try:
        return text.encode(encoding), encoding
    except UnicodeEncodeError:
        if encoding.lower() not in ("gbk", "gb2312"):
            raise
        return text.encode("gb18030"), "gb18030"


def render_day(
    orders: Sequence[Order],
    channel: str,
    day: date,
    *,
    as_of: datetime | None = None,
    encoding: str | None = None,
    late: Late | None = None,
) -> bytes:
    """The bytes of the file `channel` publishes for `day`, in that day's encoding."""
    text = render_csv(orders, channel, day, as_of=as_of, late=late)
    data, _ = encode(text, encoding or default_encoding(channel, day))
    return data


# -- publishing ---------------------------------------------------------------------------------
def publish_bytes(path: Path, data: bytes, *, mtime: float | None = None) -> bool:
    """Write `data` to `path` atomically (a reader never sees half a file); returns whether the
    content changed. An unchanged file keeps its mtime, so a client does not see a new version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data and mtime is None:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def write_exports(
    world: Any,
    root: Path,
    *,
    channels: Sequence[str] = EXPORT_CHANNELS,
    as_of: datetime | None = None,
) -> list[Path]:
    """Write every day's export of each channel under `root/<channel>/`; returns the files whose
    content changed (a re-run with the same world changes nothing)."""
    orders, late = orders_of(world), getattr(world, "late_updates", None)
    changed = []
    for channel in channels:
        for day in days_by_channel(orders, channel, as_of, late):
            path = root / channel / file_name(day, channel)
            data = render_day(orders, channel, day, as_of=as_of, late=late)
            if publish_bytes(path, data):
                changed.append(path)
    return changed


def reexport_day(
    world: Any,
    root: Path,
    channel: str,
    day: date,
    *,
    as_of: datetime | None = None,
    encoding: str | None = None,
) -> Path:
    """A corrected re-export: render `day` again from the orders as they are now and replace the
    file (always with a new mtime, as a platform re-sending a file does)."""
    path = root / channel / file_name(day, channel)
    late = getattr(world, "late_updates", None)
    data = render_day(orders_of(world), channel, day, as_of=as_of, encoding=encoding, late=late)
    # SFTP shows whole-second mtimes: make sure the new version's mtime differs from the old one
    mtime = float(int(datetime.now().timestamp()))
    if path.exists():
        mtime = max(mtime, int(path.stat().st_mtime) + 1)
    publish_bytes(path, data, mtime=mtime)
    return path
