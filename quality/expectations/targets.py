"""What each suite validates: the relation, the rows (a `select` over it), the key columns a
failing row is shown by, and how a run's own rows are found.

Targets are data, not code paths: the runner (`quality.expectations.runner`) validates any of
them the same way. Channels and merchant tables are passed in by the caller (the channel
registry and the connectors' table list live outside `quality`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How a run's own rows are found: raw rows carry the id of the run that wrote them, dbt
# incremental rows the transaction id (`_written_xid`) of the build that wrote them.
Scope = Literal["run_id", "written_xid", "all"]

UNIFIED_STATUSES = (
    "awaiting_payment", "paid_pending_review", "risk_review", "pending_allocation",
    "allocated", "picking", "awaiting_pickup", "pickup_failed", "in_transit", "delivered",
    "after_sale", "closed",
)  # fmt: skip


@dataclass(frozen=True)
class CheckTarget:
    """One suite on one relation. `select` reads `relation` aliased `t` (the runner adds the
    scope's `where` on `t`); `keys` name a failing row in the samples."""

    suite: str
    relation: str
    select: str
    keys: tuple[str, ...]
    scope: Scope
    channel: str | None = None
    # a view's `written_xid` scope: the incremental model its rows (and `_written_xid`) come
    # from, whose latest build starts "this run's rows" (a view has no build of its own that
    # writes rows)
    since: str | None = None


def raw_orders(channel: str) -> CheckTarget:
    """Integrity of the rows a load wrote to `raw.<channel>_orders`."""
    relation = f"raw.{channel}_orders"
    return CheckTarget(
        suite="raw_orders",
        relation=relation,
        select=(
            "select t.channel, t.platform_order_no, t.source_modified_at, t.content_hash, "
            f"t.loaded_at from {relation} as t"
        ),
        keys=("channel", "platform_order_no"),
        scope="run_id",
        channel=channel,
    )


def raw_orders_volume(channel: str) -> CheckTarget:
    """Row-count change and freshness of the whole `raw.<channel>_orders`."""
    relation = f"raw.{channel}_orders"
    return CheckTarget(
        suite="raw_orders_volume",
        relation=relation,
        select=f"select t.loaded_at from {relation} as t",
        keys=(),
        scope="all",
        channel=channel,
    )


def _safe_numeric(expr: str) -> str:
    # a payload string that is not a number reads as null (the not-null expectation reports
    # it) instead of failing the whole query
    return f"case when ({expr}) ~ '^-?[0-9]+(\\.[0-9]+)?$' then ({expr})::numeric end"


# merchant table -> (keys, extra columns read from the payload)
_MERCHANT_TABLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "warehouses": (("warehouse_id",), {}),
    "skus": (("sku",), {"price": _safe_numeric("t.payload ->> 'price'")}),
    "wms_stock": (("warehouse_id", "sku"), {}),
    "wms_events": (("event_id",), {"type": "t.payload ->> 'type'"}),
    "stock_movements": (("movement_id",), {"kind": "t.payload ->> 'kind'"}),
    "carrier_shipments": (("tracking_no",), {"status": "t.payload ->> 'status'"}),
    "carrier_tracks": (("event_id",), {"status": "t.payload ->> 'status'"}),
    "cs_tickets": (
        ("ticket_id",),
        {"status": "t.payload ->> 'status'", "priority": "t.payload ->> 'priority'"},
    ),
    "behaviour_events": (("event_id",), {"action": "t.payload ->> 'action'"}),
}
MERCHANT_TABLES = tuple(_MERCHANT_TABLES)


def merchant_table(table: str) -> CheckTarget:
    """Integrity of the rows a pull wrote to a merchant-system table `raw.<table>`."""
    keys, extra = _MERCHANT_TABLES[table]
    columns = [f"t.{k}" for k in keys] + ["t.source_modified_at", "t.loaded_at"]
    columns += [f"{expr} as {name}" for name, expr in extra.items()]
    return CheckTarget(
        suite=f"raw_{table}",
        relation=f"raw.{table}",
        select=f"select {', '.join(columns)} from raw.{table} as t",
        keys=keys,
        scope="run_id",
    )


def risk_feedback() -> CheckTarget:
    """Integrity of the chargebacks and audit verdicts a pull wrote to `raw.risk_feedback`:
    the learned risk score trains on them, so a wrong kind or verdict teaches it wrong."""
    return CheckTarget(
        suite="raw_risk_feedback",
        relation="raw.risk_feedback",
        select=(
            "select t.feedback_id, t.channel, t.platform_order_no, t.kind, t.verdict, "
            "t.kind || ':' || t.verdict as claim, t.source_modified_at, t.loaded_at "
            "from raw.risk_feedback as t"
        ),
        keys=("feedback_id",),
        scope="run_id",
    )


def _mart(
    model: str,
    columns: str,
    keys: tuple[str, ...],
    scope: Scope,
    joins: str = "",
    since: str | None = None,
) -> CheckTarget:
    schema, name = model.split(".")
    return CheckTarget(
        suite=name,
        relation=model,
        select=f"select {columns} from {model} as t {joins}".strip(),
        keys=keys,
        scope=scope,
        since=since,
    )


_ORDER_KEYS = ("channel", "platform_order_no")

MART_TARGETS: dict[str, CheckTarget] = {
    t.relation: t
    for t in (
        _mart(
            "marts.fct_orders",
            "t.channel, t.platform_order_no, t.unified_status, t.goods_value, "
            "t.discount_amount, t.freight, t.paid_amount, t.created_at, t.paid_at, "
            "t.modified_at",
            _ORDER_KEYS,
            "written_xid",
        ),
        _mart(
            "marts.order_holographic",
            "t.channel, t.platform_order_no, t.unified_status, t.goods_value, t.freight, "
            "t.paid_amount, t.created_at, t.paid_at",
            _ORDER_KEYS,
            "written_xid",
        ),
        # items -> orders: a line whose order is missing from fct_orders has a null parent
        _mart(
            "marts.fct_order_items",
            "t.channel, t.platform_order_no, t.line_no, t.sku, t.qty, t.unit_price, "
            "t.line_goods_value, orders.platform_order_no as parent_order_no",
            ("channel", "platform_order_no", "line_no"),
            "written_xid",
            joins="left join marts.fct_orders as orders "
            "on orders.channel = t.channel and orders.platform_order_no = t.platform_order_no",
        ),
        # the routing decision's input, a view over int_orders: a run checks the rows of the
        # orders int_orders' latest build wrote, which are the ones routing decides anew (its
        # every checked value is int_orders'). Read whole it was 105,000 rows and ~37,500
        # pages a cycle at 1,000,000 orders (3-10 s): the paid orders the warehouse has not
        # taken yet are a day's worth at peak
        _mart(
            "intermediate.int_orders_awaiting_allocation",
            "t.channel, t.platform_order_no, t.goods_value, t.freight, t.paid_at, t.modified_at",
            _ORDER_KEYS,
            "written_xid",
            since="intermediate.int_orders",
        ),
    )
}
