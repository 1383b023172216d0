"""Test-side reading of each platform's native order: the unified status and the paid amount in
yuan, written from the gateways' documented field meanings (sandbox/gateways/*.py docstrings),
independently of the connectors (which keep payloads as delivered) and of dbt."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")


def _yuan(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _fen(value: Any) -> Decimal:
    return (Decimal(int(value)) / 100).quantize(CENT)


def taobao(p: dict[str, Any]) -> tuple[str, Decimal]:
    status = p["status"]
    refunds = {line.get("refund_status") for line in p["orders"]["order"]}
    if status == "WAIT_BUYER_PAY":
        unified = "awaiting_payment"
    elif status in ("TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"):
        unified = "closed"
    elif refunds - {"NO_REFUND", None}:
        unified = "after_sale"
    else:
        unified = {
            "WAIT_SELLER_SEND_GOODS": "paid_pending_review",
            "WAIT_BUYER_CONFIRM_GOODS": "in_transit",
            "TRADE_FINISHED": "delivered",
        }[status]
    return unified, _yuan(p["payment"])


def jd(p: dict[str, Any]) -> tuple[str, Decimal]:
    unified = {
        "WAIT_PAY": "awaiting_payment",
        "WAIT_SELLER_STOCK_OUT": "paid_pending_review",
        "WAIT_GOODS_RECEIVE_CONFIRM": "in_transit",
        "FINISHED_L": "delivered",
        "TRADE_CANCELED": "closed",
        "LOCKED": "after_sale",
    }[p["orderState"]]
    return unified, _yuan(p["orderPayment"])


def douyin(p: dict[str, Any]) -> tuple[str, Decimal]:
    status = int(p["order_status"])
    after = any(
        (line.get("after_sale_info") or {}).get("after_sale_status") for line in p["sku_order_list"]
    )
    if status in (3, 5) and after:
        unified = "after_sale"
    else:
        unified = {
            1: "awaiting_payment",
            2: "paid_pending_review",
            3: "in_transit",
            4: "closed",
            5: "delivered",
        }[status]
    return unified, _fen(p["pay_amount"])


def pdd(p: dict[str, Any]) -> tuple[str, Decimal]:
    confirm, refund = int(p["confirm_status"]), int(p["refund_status"])
    shipped = bool(p.get("shipping_time"))
    if confirm == 0:
        unified = "awaiting_payment"
    elif confirm == 2 or (refund == 4 and not shipped):
        unified = "closed"
    elif refund in (2, 4) and shipped:
        unified = "after_sale"
    else:
        unified = {1: "paid_pending_review", 2: "in_transit", 3: "delivered"}[
            int(p["order_status"])
        ]
    return unified, _yuan(p["pay_amount"])


def kuaishou(p: dict[str, Any]) -> tuple[str, Decimal]:
    base = p["orderBaseInfo"]
    status = int(base["status"])
    if status in (40, 50) and p.get("orderRefundList"):
        unified = "after_sale"
    else:
        unified = {
            10: "awaiting_payment",
            30: "paid_pending_review",
            40: "in_transit",
            50: "delivered",
            80: "closed",
        }[status]
    return unified, _fen(base["payAmount"])


def youzan(p: dict[str, Any]) -> tuple[str, Decimal]:
    full = p["full_order_info"]
    info = full["order_info"]
    status = info["status"]
    if status != "TRADE_CLOSED" and int(info.get("refund_state") or 0) != 0:
        unified = "after_sale"
    else:
        unified = {
            "WAIT_BUYER_PAY": "awaiting_payment",
            "WAIT_SELLER_SEND_GOODS": "paid_pending_review",
            "WAIT_BUYER_CONFIRM_GOODS": "in_transit",
            "TRADE_SUCCESS": "delivered",
            "TRADE_CLOSED": "closed",
        }[status]
    return unified, _yuan(full["pay_info"]["payment"])


READERS = {
    "taobao": taobao,
    "jd": jd,
    "douyin": douyin,
    "pdd": pdd,
    "kuaishou": kuaishou,
    "youzan": youzan,
}
