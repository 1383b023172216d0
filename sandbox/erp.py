"""The merchant's own H5 mall / legacy ERP database: a separate PostgreSQL database whose order
tables OrderPulse may read only through one view, as a read-only role.

Database `orderpulse_erp_sandbox` (or a given name) on the given server:
    mall.orders        one row per H5 mall order (amounts numeric yuan, times timestamptz,
                       `updated_at` = when the row last changed in the mall)
    mall.order_items   one row per order line
    public.h5_orders_v the view the reader may select: every column of mall.orders plus
                       `status_name` and `items` (JSON array of {line_no, sku, title, qty,
                       unit_price as a decimal string}, in line order)
Status codes (`status_code`): 10 待付款, 20 待发货, 30 已发货, 40 已完成, 50 已关闭, 60 售后中.

The role `<database>_reader` may connect and select from the view and nothing else (no usage on
schema `mall`, read-only transactions). Its password is derived from the admin credentials, so
publishing again gives the same URL. Publishing is idempotent: the tables then hold exactly the
world's h5mall orders.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from kernel.database import PgConn
from sandbox.exports import orders_of
from sandbox.model import Order

DEFAULT_DATABASE = "orderpulse_erp_sandbox"
VIEW = "h5_orders_v"
UPDATED_AT = "updated_at"
KEY = "order_no"
STATUS_CODES = {
    "awaiting_payment": (10, "待付款"),
    "paid_pending_review": (20, "待发货"),
    "in_transit": (30, "已发货"),
    "delivered": (40, "已完成"),
    "closed": (50, "已关闭"),
    "after_sale": (60, "售后中"),
}
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,50}$")

_DDL = """
create schema if not exists mall;
revoke all on schema mall from public;
create table if not exists mall.orders (
    order_no               text primary key,
    shop_id                text not null,
    buyer_id               text not null,
    buyer_ip               text,
    receiver_name          text not null,
    receiver_phone         text not null,
    province               text,
    city                   text,
    district               text,
    address                text,
    country                text not null default 'CN',
    status_code            smallint not null,
    goods_amount           numeric(12, 2) not null,
    shop_coupon_amount     numeric(12, 2) not null default 0,
    platform_coupon_amount numeric(12, 2) not null default 0,
    discount_amount        numeric(12, 2) not null default 0,
    coupon_codes           text,
    freight                numeric(12, 2) not null default 0,
    pay_amount             numeric(12, 2) not null,
    buyer_note             text,
    seller_note            text,
    hs_code                text,
    declared_value         numeric(12, 2),
    customs                jsonb,
    created_at             timestamptz not null,
    paid_at                timestamptz,
    shipped_at             timestamptz,
    finished_at            timestamptz,
    closed_at              timestamptz,
    after_sale_at          timestamptz,
    updated_at             timestamptz not null
);
create index if not exists orders_updated_at on mall.orders (updated_at, order_no);
create table if not exists mall.order_items (
    order_no   text not null references mall.orders (order_no) on delete cascade,
    line_no    integer not null,
    sku        text not null,
    title      text,
    qty        integer not null,
    unit_price numeric(12, 2) not null,
    primary key (order_no, line_no)
);
create or replace view public.h5_orders_v as
select o.*,
       case o.status_code when 10 then '待付款' when 20 then '待发货' when 30 then '已发货'
                     when 40 then '已完成' when 50 then '已关闭' when 60 then '售后中'
       end as status_name,
       coalesce((select json_agg(json_build_object('line_no', i.line_no, 'sku', i.sku,
                                                   'title', i.title, 'qty', i.qty,
                                                   'unit_price', i.unit_price::text)
                                 order by i.line_no)
                 from mall.order_items i where i.order_no = o.order_no), '[]'::json) as items
from mall.orders o;
"""

_ORDER_COLUMNS = (
    "order_no", "shop_id", "buyer_id", "buyer_ip", "receiver_name", "receiver_phone",
    "province", "city", "district", "address", "country", "status_code", "goods_amount",
    "shop_coupon_amount", "platform_coupon_amount", "discount_amount", "coupon_codes",
    "freight", "pay_amount", "buyer_note", "seller_note", "hs_code", "declared_value", "customs",
    "created_at", "paid_at", "shipped_at", "finished_at", "closed_at", "after_sale_at",
    "updated_at",
)  # fmt: skip


def _reader_password(admin: PgConn, database: str) -> str:
    # stable across publishes and unguessable without the admin credentials
    key = f"{admin.user}:{admin.password}@{admin.host}:{admin.port}".encode()
    digest = hmac.new(key, f"orderpulse-erp:{database}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _first(order: Order, *types: str) -> datetime | None:
    return next((e.at for e in order.events if e.type in types), None)


def _order_row(order: Order) -> tuple:
    status, _ = STATUS_CODES[order.status_at()]
    by_issuer = {"shop": 0, "platform": 0}
    for coupon in order.coupons:
        by_issuer[coupon.issuer] += coupon.amount
    customs = order.customs.model_dump(mode="json", exclude_none=True) if order.customs else None
    r = order.receiver
    return (
        order.platform_order_no, order.shop_id, order.buyer_id, order.buyer_ip, r.name, r.phone,
        r.province, r.city, r.district, r.address, order.country, status, order.goods_value,
        by_issuer["shop"], by_issuer["platform"], order.discount_amount,
        ",".join(c.code for c in order.coupons) or None,
        order.freight, order.paid_amount, order.buyer_note, order.seller_note,
        order.customs.hs_code if order.customs else None,
        order.customs.declared_value if order.customs else None,
        json.dumps(customs, ensure_ascii=False) if customs else None,
        order.created_at, order.paid_at, _first(order, "ship"), _first(order, "deliver"),
        _first(order, "cancel"), _first(order, "refund", "return", "reject"),
        max([order.created_at, *([order.paid_at] if order.paid_at else []),
             *(e.at for e in order.events)]),
    )  # fmt: skip


def _item_rows(orders: Iterable[Order]) -> Iterable[tuple]:
    for order in orders:
        for line_no, item in enumerate(order.items, start=1):
            yield (order.platform_order_no, line_no, item.sku, item.title, item.qty, item.price)


def _ensure_database(admin: PgConn, database: str, role: str, password: str) -> None:
    with psycopg.connect(admin.url(dbname="postgres"), autocommit=True) as conn:
        # serialise concurrent publishers: CREATE DATABASE / ROLE race on the catalog
        conn.execute("select pg_advisory_lock(hashtext('orderpulse.erp_sandbox'))")
        try:
            if not conn.execute(
                "select 1 from pg_database where datname = %s", [database]
            ).fetchone():
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
            if not conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
            conn.execute(
                sql.SQL(
                    "alter role {} login nosuperuser nocreatedb nocreaterole noinherit password {}"
                ).format(sql.Identifier(role), sql.Literal(password))
            )
            conn.execute(
                sql.SQL("alter role {} set default_transaction_read_only = on").format(
                    sql.Identifier(role)
                )
            )
            conn.execute(
                sql.SQL("revoke all on database {} from public").format(sql.Identifier(database))
            )
            conn.execute(
                sql.SQL("grant connect on database {} to {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('orderpulse.erp_sandbox'))")


def publish_erp(world: Any, admin_url: str, *, database: str = DEFAULT_DATABASE) -> dict:
    """Create (or refresh) the sandbox ERP database on the server of `admin_url` (a superuser or
    owner URL) holding `world`'s h5mall orders, and return how a reader reaches it:
    {"url": read-only SQLAlchemy URL, "view", "updated_at_column", "key_column", "database",
    "role", "orders"}."""
    if not _IDENT.match(database):
        raise ValueError(f"database name {database!r} must match {_IDENT.pattern}")
    admin = PgConn.from_url(admin_url)
    role = f"{database}_reader"
    password = _reader_password(admin, database)
    _ensure_database(admin, database, role, password)

    orders = [o for o in orders_of(world) if o.channel == "h5mall"]
    with psycopg.connect(admin.url(dbname=database)) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.erp_sandbox.data'))")
        conn.execute(_DDL)
        conn.execute("revoke create on schema public from public")
        ident = sql.Identifier(role)
        conn.execute(sql.SQL("grant usage on schema public to {}").format(ident))
        conn.execute(sql.SQL("grant select on public.h5_orders_v to {}").format(ident))
        # readers never wait on a half-written table: the swap is one transaction
        conn.execute("truncate mall.order_items, mall.orders")
        with conn.cursor() as cur:
            columns = sql.SQL(", ").join(map(sql.Identifier, _ORDER_COLUMNS))
            with cur.copy(sql.SQL("copy mall.orders ({}) from stdin").format(columns)) as copy:
                for order in orders:
                    copy.write_row(_order_row(order))
            with cur.copy(
                "copy mall.order_items (order_no, line_no, sku, title, qty, unit_price) from stdin"
            ) as copy:
                for row in _item_rows(orders):
                    copy.write_row(row)
    reader = PgConn(admin.host, admin.port, role, password, database)
    return {
        "url": reader.url(driver="psycopg"),
        "view": VIEW,
        "updated_at_column": UPDATED_AT,
        "key_column": KEY,
        "database": database,
        "role": role,
        "orders": len(orders),
    }
