"""The payload fixtures `tests/fixtures/payloads/<platform>.json`: what each platform's detail
call returns for one rich order (two lines, a platform and a shop coupon, freight, buyer and
seller notes, cross-border customs, paid, shipped and delivered). dbt's staging models are
written against these; `python -m sandbox.gateways.fixtures [DIR]` rewrites them and a test
keeps them in step with the gateways."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sandbox.gateways import GATEWAYS
from sandbox.gateways.common import BEIJING
from sandbox.gateways.samples import order_number
from sandbox.model import Coupon, Customs, Event, Item, Order, Receiver

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "payloads"
CREATED = datetime(2026, 11, 20, 10, 15, 30, tzinfo=BEIJING)
# fixed credentials: the ciphertexts in the fixtures depend on the secret. These six keep the
# fixtures on disk as they are; any other marketplace gets `fixture_credentials`' default.
CREDENTIALS = {
    "taobao": {"app_key": "12345678", "app_secret": "fixture-secret", "session": "s"},
    "jd": {"app_key": "FIXTUREKEY", "app_secret": "fixture-secret", "access_token": "t"},
    "douyin": {
        "app_key": "7000000000000000001",
        "app_secret": "fixture-secret",
        "access_token": "t",
    },
    "pdd": {"client_id": "fixtureclient", "client_secret": "fixture-secret", "access_token": "t"},
    "kuaishou": {
        "app_key": "ks700000000000000001",
        "app_secret": "fixture-secret",
        "sign_secret": "fixture-sign-secret",
        "access_token": "t",
    },
    "youzan": {
        "client_id": "fixtureclient",
        "client_secret": "fixture-secret",
        "access_token": "t",
    },
}


def fixture_order(channel: str) -> Order:
    return Order(
        channel=channel,
        platform_order_no=order_number(channel, 4242, CREATED),
        shop_id=f"{channel}_shop_1",
        created_at=CREATED,
        buyer_id=f"{channel}_buyer_00042",
        buyer_ip="58.100.12.34",
        receiver=Receiver(
            name="张伟",
            phone="13812345678",
            province="浙江省",
            city="杭州市",
            district="西湖区",
            address="文三路 90 号 3 幢 1201 室",
        ),
        items=[
            Item(sku="TEA-001-250G", qty=2, price=Decimal("128.00"), title="西湖龙井 250g 礼盒"),
            Item(sku="MUG-010-BLUE", qty=1, price=Decimal("39.90"), title="陶瓷马克杯 蓝色"),
        ],
        freight=Decimal("8.00"),
        coupons=[
            Coupon(code="PLAT-20", issuer="platform", amount=Decimal("20.00")),
            Coupon(code="SHOP-5", issuer="shop", amount=Decimal("5.00")),
        ],
        country="HK",
        customs=Customs(hs_code="0902101000", declared_value=Decimal("256.00")),
        events=[
            Event(at=CREATED + timedelta(minutes=4, seconds=12), type="pay"),
            Event(at=CREATED + timedelta(hours=20, minutes=3), type="ship"),
            Event(at=CREATED + timedelta(days=2, hours=5, minutes=41), type="deliver"),
        ],
        buyer_note="请用礼盒包装，谢谢",
        seller_note="老客户，送试饮装",
    )


def fixture_credentials(channel: str) -> dict[str, str]:
    """Fixed credentials of `channel`'s gateway: its `CREDENTIALS` entry, else each field of
    the gateway's credentials as `fixture-<field>` (no table to extend for a new marketplace)."""
    fixed = CREDENTIALS.get(channel)
    if fixed is not None:
        return fixed
    fields = GATEWAYS[channel].new_credentials()
    return {name: f"fixture-{name.replace('_', '-')}" for name in fields}


def render_fixture(channel: str) -> dict:
    order = fixture_order(channel)
    gateway = GATEWAYS[channel]([order], fixture_credentials(channel))
    return gateway.sample(order.platform_order_no)


def write_fixtures(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for channel in GATEWAYS:
        path = directory / f"{channel}.json"
        text = json.dumps(render_fixture(channel), ensure_ascii=False, indent=2) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_fixtures(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        print(written_path)
