"""Small deterministic order sets for the gateways' own tests, the payload fixtures and live
mode: every lifecycle the neutral model knows (unpaid, paid, shipped, delivered, cancelled
before and after payment, refunded before and after shipping, returned, rejected), platform and
shop coupons, cross-border customs, and each platform's order-number shape. The world
generator (`sandbox.world`) makes the realistic worlds; this only has to be varied and small."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.model import Coupon, Customs, Event, Item, Order, Receiver

RECEIVERS = (
    ("张伟", "13812345678", "浙江省", "杭州市", "西湖区", "文三路 90 号 3 幢 1201 室"),
    ("王芳", "15900001111", "广东省", "深圳市", "南山区", "科技园南区高新南七道 18 号"),
    ("李娜", "18611112222", "北京市", "北京市", "朝阳区", "建国路 88 号 SOHO 现代城 5 号楼"),
    ("刘洋", "17012345678", "四川省", "成都市", "武侯区", "天府大道北段 1700 号"),
    ("陈静", "13700003333", "新疆维吾尔自治区", "乌鲁木齐市", "天山区", "解放北路 25 号"),
    ("欧阳娜娜", "13699998888", "上海市", "上海市", "浦东新区", "世纪大道 100 号 45 层"),
)
SKUS = (
    ("TEA-001-250G", "西湖龙井 250g 礼盒", Decimal("128.00")),
    ("MUG-010-BLUE", "陶瓷马克杯 蓝色", Decimal("39.90")),
    ("SOCK-03-L", "纯棉袜 5 双装 L", Decimal("29.90")),
    ("RICE-5KG", "五常大米 5kg", Decimal("89.00")),
    ("PHONE-CASE-X", "手机壳 透明", Decimal("19.90")),
)
LIFECYCLES = (
    (),
    ("pay",),
    ("pay", "ship"),
    ("pay", "ship", "deliver"),
    ("cancel",),
    ("pay", "cancel"),
    ("pay", "refund"),
    ("pay", "ship", "refund"),
    ("pay", "ship", "deliver", "return"),
    ("pay", "ship", "reject"),
)


# Each marketplace's order number from (n, creation time t) in the platform's usual shape;
# the other channels use `<CHANNEL><n, 10 digits>`.
_ORDER_NUMBERS: dict[str, Callable[[int, datetime], str]] = {
    "taobao": lambda n, t: str(300000000000000000 + n * 7919),  # 18 digits
    "jd": lambda n, t: str(300000000000 + n * 13),  # 12 digits
    "douyin": lambda n, t: str(6920000000000000000 + n * 31),  # 19-digit string id
    "pdd": lambda n, t: f"{t:%y%m%d}-{400000000000000 + n * 17}",
    "kuaishou": lambda n, t: str(2400000000000000 + n * 11),  # 16 digits
    "youzan": lambda n, t: f"E{t:%Y%m%d%H%M%S}{n:09d}",
}


def order_number(channel: str, n: int, created: datetime) -> str:
    """An order number in the platform's usual shape (unique per `n`)."""
    shape = _ORDER_NUMBERS.get(channel)
    return shape(n, created) if shape else f"{channel.upper()}{n:010d}"


def sample_orders(
    channel: str, n: int, *, end: datetime, span: timedelta = timedelta(days=2), seed: int = 0
) -> list[Order]:
    """`n` orders of `channel` created in (end - span, end], cycling through every lifecycle;
    events follow creation by minutes to hours and may lie after `end` (not yet happened)."""
    rng = random.Random(f"{seed}:{channel}")
    orders = []
    for k in range(n):
        created = end - span * (1 - (k + 0.5) / n) - timedelta(seconds=rng.randrange(60))
        name, phone, province, city, district, address = RECEIVERS[k % len(RECEIVERS)]
        items = [
            Item(sku=sku, qty=rng.randint(1, 3), price=price, title=title)
            for sku, title, price in rng.sample(SKUS, rng.randint(1, 3))
        ]
        coupons = []
        if k % 3 == 1:
            coupons.append(Coupon(code=f"PLAT{k:04d}", issuer="platform", amount=Decimal("5.00")))
        if k % 4 == 2:
            coupons.append(Coupon(code=f"SHOP{k:04d}", issuer="shop", amount=Decimal("3.50")))
        cross_border = k % 7 == 3
        moment = created
        events = []
        for kind in LIFECYCLES[k % len(LIFECYCLES)]:
            moment = moment + timedelta(minutes=rng.randint(3, 300), seconds=rng.randrange(60))
            events.append(Event(at=moment, type=kind))
        orders.append(
            Order(
                channel=channel,
                platform_order_no=order_number(channel, k + 1, created),
                shop_id=f"{channel}_shop_{1 + k % 2}",
                created_at=created,
                buyer_id=f"{channel}_buyer_{rng.randrange(10_000):05d}",
                buyer_ip=f"10.{k % 250}.{rng.randrange(250)}.{rng.randrange(250)}",
                receiver=Receiver(
                    name=name,
                    phone=phone,
                    province=province,
                    city=city,
                    district=district,
                    address=address,
                ),
                items=items,
                freight=Decimal("0.00") if k % 2 else Decimal("8.00"),
                coupons=coupons,
                country="HK" if cross_border else "CN",
                customs=Customs(
                    hs_code="0902101000", declared_value=Decimal("128.00"), id_card_name=name
                )
                if cross_border
                else None,
                events=events,
                buyer_note="请尽快发货，谢谢" if k % 5 == 0 else None,
                seller_note="VIP 客户" if k % 6 == 0 else None,
            )
        )
    return orders
