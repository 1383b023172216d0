"""Scenario files: orders in platform-neutral JSON Lines, published instead of (or with) the
generated ones.

One line is one `sandbox.model.Order` as JSON: `channel`, `platform_order_no`, `shop_id`,
`created_at`, `paid_at` (ISO 8601 with offset, may be null), `buyer_id`, `buyer_ip`,
`receiver` {`name`, `phone`, `province`, `city`, `district`, `address`}, `items` [{`sku`, `qty`,
`price`, `title`?}], `freight`, `coupons` [{`code`, `issuer` (platform|shop), `amount`}],
`country` (default CN), `customs` {`hs_code`, `declared_value`, …}, `events` [{`at`, `type`}]
with types pay/ship/deliver/cancel/refund/return/reject, `buyer_note`, `seller_note`,
`labels`. Amounts are decimal strings in yuan with at most 2 decimals. Blank lines are
skipped. A line that cannot be accepted becomes a `ScenarioError(line_no, reason)`; it is
never dropped in silence.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from sandbox.catalog import Sku
from sandbox.model import Order
from sandbox.world import World, late_update_for, paused_gc


@dataclass(frozen=True)
class ScenarioError:
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


def load_scenario(path: str | Path) -> tuple[list[Order], list[ScenarioError]]:
    """The orders of a JSON Lines scenario file and the lines it rejected (1-based numbers)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scenario file {path} does not exist")
    orders: list[Order] = []
    errors: list[ScenarioError] = []
    seen: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            order, reason = parse_line(line)
            if order is not None:
                key = (order.channel, order.platform_order_no)
                if key in seen:
                    reason = f"order {key[0]}/{key[1]} already on line {seen[key]}"
                    order = None
                else:
                    seen[key] = line_no
            if order is None:
                errors.append(ScenarioError(line_no, reason or "rejected"))
            else:
                orders.append(order)
    return orders, errors


def parse_line(line: str) -> tuple[Order | None, str | None]:
    """(order, None) or (None, reason) for one scenario line."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    try:
        order = Order.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "order"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return None, f"{where}: {first['msg']}{more}"
    amounts = [("freight", order.freight)]
    amounts += [(f"items.{i}.price", it.price) for i, it in enumerate(order.items)]
    amounts += [(f"coupons.{i}.amount", c.amount) for i, c in enumerate(order.coupons)]
    for where, value in amounts:
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            return None, f"{where}: {value} has more than 2 decimals (amounts are yuan.fen)"
    return order, None


def merge_scenario(world: World, orders: list[Order], add: bool) -> World:
    """A world publishing `orders` instead of the generated ones (`add=False`) or in addition to
    them (`add=True`; a scenario order replaces a generated one with the same key). SKUs the
    catalogue lacks are added to it and stocked in every warehouse; the merchant-side records
    are rebuilt for the resulting orders."""
    from sandbox.merchant_systems_records import build_merchant_systems_records

    keys = {(o.channel, o.platform_order_no) for o in orders}
    kept = [o for o in world.orders if (o.channel, o.platform_order_no) not in keys] if add else []
    merged = kept + list(orders)
    known = {s.sku for s in world.skus}
    skus = list(world.skus)
    extra = list(world.extra_skus)
    for order in orders:
        for item in order.items:
            if item.sku not in known:
                known.add(item.sku)
                hs = order.customs.hs_code if order.customs and order.customs.hs_code else ""
                skus.append(
                    Sku(
                        sku=item.sku,
                        title=item.title or item.sku,
                        category="其他",
                        price=item.price,
                        weight_kg=Decimal("0.50"),
                        hs_code=hs,
                        barcode="",
                        is_hot=False,
                    )
                )
                extra.append(item.sku)
    late = {k: v for k, v in world.late_updates.items() if add and k not in keys}
    for order in orders:
        update = late_update_for(order, world.end) if "late_status_update" in order.labels else None
        if update is not None:
            late[(order.channel, order.platform_order_no)] = update
    used = {i.sku for o in merged for i in o.items}
    new = dataclasses.replace(
        world,
        orders=merged,
        skus=skus,
        extra_skus=extra,
        late_updates=late,
        oversold_skus=[s for s in world.oversold_skus if s in used],
    )
    with paused_gc():
        build_merchant_systems_records(new)
    return new
