"""Raw order rows for the dbt tests, produced the way production produces them: the sandbox
renders each sample order in its platform's native format (the gateways' `sample`, the regional
CSV exports, the ERP view's columns), and the real connectors' parsing and raw loader store
them. Every order also carries its ground truth (`Order.truth()`)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from connectors.channels_config import load_channels
from connectors.csv_orders import parse_orders
from connectors.merchant_systems import ensure_merchant_systems_tables
from connectors.raw_loader import RawOrder, load_orders
from connectors.raw_schema import ensure_raw_tables
from sandbox.exports import days_by_channel, render_csv
from sandbox.gateways.base import Gateway
from sandbox.gateways.samples import sample_orders
from sandbox.merchant_systems_records import record_dict
from sandbox.model import CHANNELS, MARKETPLACES, Order
from sandbox.world import World, generate_world

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def gateway_class(channel: str) -> type[Gateway] | None:
    """The sandbox gateway of a marketplace, or None while it is not built yet."""
    try:
        module = importlib.import_module(f"sandbox.gateways.{channel}")
    except ModuleNotFoundError:
        return None
    for value in vars(module).values():
        is_gateway = isinstance(value, type) and issubclass(value, Gateway) and value is not Gateway
        if is_gateway and getattr(value, "channel", None) == channel:
            return value
    return None


def available_channels() -> list[str]:
    """Channels whose rendering exists in this checkout (marketplace gateways land one by one)."""
    return [c for c in CHANNELS if c not in MARKETPLACES or gateway_class(c) is not None]


def orders_for(channels: list[str], n: int = 20) -> list[Order]:
    """`n` sample orders per channel, cycling through every lifecycle the model knows."""
    return [o for c in channels for o in sample_orders(c, n, end=END)]


def _marketplace_rows(channel: str, orders: list[Order]) -> list[RawOrder]:
    cls = gateway_class(channel)
    assert cls is not None
    gateway = cls(orders)
    rows = []
    for order in orders:
        payload = gateway.sample(order.platform_order_no)
        r = order.receiver
        payload["_decrypted"] = {"name": r.name, "phone": r.phone, "address": r.address}
        rows.append(RawOrder(order.platform_order_no, order.modified_at, payload))
    return rows


def _h5mall_payload(order: Order) -> dict:
    """The ERP view row under the normalised keys config/channels.yaml db_bridge maps it to."""
    firsts: dict[str, datetime] = {}
    for event in order.events:
        firsts.setdefault(event.type, event.at)
    shop = sum((c.amount for c in order.coupons if c.issuer == "shop"), Decimal(0))
    platform = sum((c.amount for c in order.coupons if c.issuer == "platform"), Decimal(0))
    words = {
        "awaiting_payment": "待付款", "paid_pending_review": "待发货", "in_transit": "已发货",
        "delivered": "已完成", "closed": "已关闭", "after_sale": "售后中",
    }  # fmt: skip

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    r = order.receiver
    return {
        "platform_order_no": order.platform_order_no,
        "shop_id": order.shop_id,
        "buyer_id": order.buyer_id,
        "buyer_ip": order.buyer_ip,
        "receiver_name": r.name,
        "receiver_phone": r.phone,
        "receiver_province": r.province,
        "receiver_city": r.city,
        "receiver_district": r.district,
        "receiver_address": r.address,
        "country": order.country,
        "goods_value": str(order.goods_value),
        "shop_discount": str(shop),
        "platform_discount": str(platform),
        "freight": str(order.freight),
        "paid_amount": str(order.paid_amount),
        "status": words[order.status_at()],
        "buyer_note": order.buyer_note,
        "seller_note": order.seller_note,
        "customs": order.customs.model_dump(mode="json", exclude_none=True)
        if order.customs
        else None,
        "created_at": iso(order.created_at),
        "paid_at": iso(order.paid_at),
        "shipped_at": iso(firsts.get("ship")),
        "delivered_at": iso(firsts.get("deliver")),
        "closed_at": iso(firsts.get("cancel")),
        "modified_at": iso(order.modified_at),
        "items": [
            {"line_no": k, "sku": i.sku, "title": i.title, "qty": i.qty, "price": str(i.price)}
            for k, i in enumerate(order.items, start=1)
        ],
    }


def _file_rows(channel: str, orders: list[Order]) -> Iterator[list[RawOrder]]:
    """One batch per daily file, oldest first (a later file carries the newer state)."""
    fmt = load_channels().channels[channel].file_format
    assert fmt is not None
    for day in days_by_channel(orders, channel):
        text = render_csv(orders, channel, day)
        parsed = parse_orders(
            text.encode("utf-8"), f"order_{day:%Y%m%d}.csv", fmt,
            fallback_modified_at=END + timedelta(days=1),
        )  # fmt: skip
        assert not parsed.rejects, parsed.rejects
        yield parsed.orders


def load_sample_orders(conn: psycopg.Connection, orders: list[Order]) -> None:
    """Store `orders` in their channels' raw tables through the real raw loader."""
    channels = sorted({o.channel for o in orders})
    ensure_raw_tables(conn, channels)
    for channel in channels:
        mine = [o for o in orders if o.channel == channel]
        if channel in MARKETPLACES:
            load_orders(conn, channel, _marketplace_rows(channel, mine), run_id="test")
        elif channel == "h5mall":
            rows = [RawOrder(o.platform_order_no, o.modified_at, _h5mall_payload(o)) for o in mine]
            load_orders(conn, channel, rows, run_id="test")
        else:
            for batch in _file_rows(channel, mine):
                load_orders(conn, channel, batch, run_id="test")


# raw table -> (World attribute, key fields, time field or None for the load time)
MERCHANT_SYSTEMS_TABLES = {
    "warehouses": ("warehouses", ("warehouse_id",), None),
    "skus": ("skus", ("sku",), None),
    "wms_stock": ("stock", ("warehouse_id", "sku"), "last_sync_at"),
    "wms_events": ("wms_events", ("event_id",), "at"),
    "stock_movements": ("stock_movements", ("movement_id",), "at"),
    "carrier_shipments": ("shipments", ("tracking_no",), "updated_at"),
    "carrier_tracks": ("tracking_events", ("event_id",), "at"),
    "cs_tickets": ("cs_tickets", ("ticket_id",), "updated_at"),
    "behaviour_events": ("behaviour_log", ("event_id",), "at"),
}


def _record(value: object) -> dict:
    data = value.as_dict() if hasattr(value, "as_dict") else record_dict(value)
    return json.loads(json.dumps(data, default=str))


def load_merchant_systems_records(conn: psycopg.Connection, world: World) -> None:
    """The merchant systems' records of `world` in the raw tables connectors/merchant_systems.py
    creates (same DDL, payload = the record with ISO 8601 times)."""
    ensure_merchant_systems_tables(conn)
    with conn.transaction():
        for table, (attr, keys, time_field) in MERCHANT_SYSTEMS_TABLES.items():
            rows = [_record(r) for r in getattr(world, attr)]
            with conn.cursor().copy(
                f"copy raw.{table} ({', '.join(keys)}, source_modified_at, payload, "
                "content_hash) from stdin"
            ) as copy:
                for row in rows:
                    modified = row[time_field] if time_field else END.isoformat()
                    text = json.dumps(row, ensure_ascii=False, sort_keys=True)
                    copy.write_row((*(str(row[k]) for k in keys), modified, text, str(hash(text))))


def small_world(orders: int = 240) -> World:
    """A generated world (anomaly labels, WMS, carriers, CS, behaviour log) ending at END."""
    return generate_world(seed=11, orders=orders, days=2, end=END)


def fixture_payloads() -> dict[str, list[dict]]:
    """The committed payload fixtures (tests/fixtures/payloads/<platform>.json), if any."""
    out = {}
    for path in sorted(FIXTURES.glob("*.json")) if FIXTURES.exists() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        out[path.stem] = data if isinstance(data, list) else [data]
    return out
