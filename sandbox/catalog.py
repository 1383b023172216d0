"""The merchant's fixed set-up: shops per channel, the SKU catalogue, warehouses and carriers.

Everything here is derived from the seed alone (not from the number of orders), so a small and
a large world of the same seed share their catalogue, shops and warehouses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

import numpy as np

from sandbox.channels import CHANNELS
from sandbox.gateways import per_channel


@dataclass(frozen=True, slots=True)
class Shop:
    shop_id: str
    channel: str
    name: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Sku:
    sku: str
    title: str
    category: str
    price: Decimal  # list price, yuan
    weight_kg: Decimal
    hs_code: str  # customs code, for cross-border orders
    barcode: str
    is_hot: bool  # one of the top-50 sellers

    def as_dict(self) -> dict:
        d = asdict(self)
        d["price"], d["weight_kg"] = str(self.price), str(self.weight_kg)
        return d


@dataclass(frozen=True, slots=True)
class Warehouse:
    warehouse_id: str
    name: str
    province: str
    city: str
    district: str
    latitude: float
    longitude: float
    is_front: bool  # a front (forward) warehouse near buyers, stocking hot SKUs only
    region: str

    def as_dict(self) -> dict:
        return asdict(self)


WAREHOUSES = (
    Warehouse("WH-EAST", "华东中心仓（昆山）", "江苏省", "苏州市", "昆山市",
              31.384299, 120.980736, False, "east"),
    Warehouse("WH-SOUTH", "华南中心仓（广州）", "广东省", "广州市", "白云区",
              23.157290, 113.273238, False, "south"),
    Warehouse("WH-NORTH", "华北中心仓（天津）", "天津市", "天津市", "武清区",
              39.384119, 117.044387, False, "north"),
    Warehouse("WH-WEST", "西南中心仓（成都）", "四川省", "成都市", "双流区",
              30.574474, 103.923651, False, "west"),
    Warehouse("WH-FRONT-HZ", "杭州前置仓", "浙江省", "杭州市", "西湖区",
              30.259244, 120.130396, True, "east"),
)  # fmt: skip
STALE_WAREHOUSE = "WH-WEST"  # its WMS stock sync lags > 30 min (the circuit-breaker case)
FRONT_RADIUS_KM = 60.0

CARRIERS = {
    "SF": "顺丰速运",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "YUNDA": "韵达快递",
    "STO": "申通快递",
    "JD": "京东物流",
    "EMS": "中国邮政EMS",
}

# Shops per channel of config/channels.yaml: (shop_id, name). Ids follow each platform's own
# shape. A marketplace's shops are its gateway's `shops`, the other channels' are here.
SHOPS: dict[str, tuple[tuple[str, str], ...]] = per_channel("shops", {
    "h5mall": (("H5-MAIN", "橙意官方商城"),),
    "pos": (
        ("POS-SH01", "上海南京路门店"), ("POS-HZ01", "杭州湖滨门店"), ("POS-GZ01", "广州天河门店"),
    ),
    "regional_a": (("RA-3301", "浙里购区域店"),),
    "regional_b": (("RB-4401", "粤享购区域店"),),
})  # fmt: skip


def shops() -> dict[str, list[Shop]]:
    """The merchant's shops on every channel, in the sandbox's channel order."""
    missing = [ch for ch in CHANNELS if not SHOPS.get(ch)]
    if missing:  # a channel added to config/channels.yaml needs its sandbox shops
        raise KeyError(
            f"no sandbox shops for {missing}: a marketplace's go on its gateway class "
            "(`shops`), the other channels' in SHOPS of sandbox/catalog.py"
        )
    return {ch: [Shop(sid, ch, name) for sid, name in SHOPS[ch]] for ch in CHANNELS}


# category: (code, products, price range yuan, weight range kg, hs_code)
_CATEGORIES = {
    "服饰": ("CL", ("纯棉T恤", "连帽卫衣", "牛仔裤", "羽绒服", "针织开衫", "运动短裤", "衬衫"),
           (39, 599), (0.2, 1.2), "6109100021"),
    "美妆": ("BE", ("保湿面霜", "精华液", "口红", "洗面奶", "防晒霜", "面膜10片装", "卸妆水"),
           (29, 459), (0.05, 0.4), "3304990099"),
    "数码配件": ("DG", ("快充充电器", "蓝牙耳机", "数据线", "充电宝", "手机壳", "智能手环"),
             (19, 699), (0.05, 0.5), "8504403014"),
    "食品": ("FD", ("坚果礼盒", "挂耳咖啡", "每日坚果", "牛肉干", "绿茶", "燕麦片", "蜂蜜"),
           (15, 268), (0.2, 2.0), "2008199990"),
    "家居": ("HM", ("四件套", "记忆枕", "浴巾", "收纳箱", "保温杯", "香薰蜡烛", "拖鞋"),
           (25, 899), (0.3, 4.5), "6302600000"),
    "母婴": ("BB", ("纸尿裤", "婴儿湿巾", "奶瓶", "儿童牙膏", "辅食碗", "爬行垫"),
           (19, 399), (0.2, 3.0), "9619001100"),
}  # fmt: skip
_BRANDS = ("橙意", "小橙", "橙意优选", "橙意Pro")
_SPECS = ("经典款", "升级款", "礼盒装", "家庭装", "便携装", "限定款", "标准装", "大容量")
HOT_SKUS = 50


def catalogue(seed: int, size: int = 300) -> list[Sku]:
    """`size` SKUs, most popular first (index = popularity rank; the first 50 are hot)."""
    rng = np.random.default_rng([seed, 101])
    cats = list(_CATEGORIES)
    out: list[Sku] = []
    for i in range(size):
        cat = cats[int(rng.integers(len(cats)))]
        code, products, (lo, hi), (wlo, whi), hs = _CATEGORIES[cat]
        product = products[int(rng.integers(len(products)))]
        spec = _SPECS[int(rng.integers(len(_SPECS)))]
        brand = _BRANDS[int(rng.integers(len(_BRANDS)))]
        # prices end in .9 or .0 like real list prices
        price = Decimal(int(rng.uniform(lo, hi))) + Decimal(rng.choice(["0.90", "0.00", "0.80"]))
        weight = Decimal(str(round(float(rng.uniform(wlo, whi)), 2)))
        out.append(
            Sku(
                sku=f"{code}-{10001 + i}",
                title=f"{brand}{product}{spec}",
                category=cat,
                price=price,
                weight_kg=weight,
                hs_code=hs,
                barcode=f"69{int(rng.integers(10**10, 10**11 - 1))}",
                is_hot=i < HOT_SKUS,
            )
        )
    return out


def popularity(size: int) -> np.ndarray:
    """Draw weights for catalogue ranks: a Zipf-like long tail (hot items sell most)."""
    w = 1.0 / np.arange(1, size + 1) ** 0.9
    return w / w.sum()


def assign_warehouses(
    lat: np.ndarray, lon: np.ndarray, all_hot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The warehouse the merchant ships from (index into WAREHOUSES) and its distance in km:
    the front warehouse when every item is hot and the buyer is within FRONT_RADIUS_KM of it,
    otherwise the nearest regional warehouse."""
    from sandbox.geo import haversine_km

    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    regional = [i for i, w in enumerate(WAREHOUSES) if not w.is_front]
    front = next(i for i, w in enumerate(WAREHOUSES) if w.is_front)
    dists = np.stack(
        [haversine_km(lat, lon, WAREHOUSES[i].latitude, WAREHOUSES[i].longitude) for i in regional]
    )
    best = np.argmin(dists, axis=0)
    wh = np.array(regional)[best]
    dist = dists[best, np.arange(len(lat))]
    fd = haversine_km(lat, lon, WAREHOUSES[front].latitude, WAREHOUSES[front].longitude)
    use_front = np.asarray(all_hot, bool) & (fd <= FRONT_RADIUS_KM)
    return np.where(use_front, front, wh), np.where(use_front, fd, dist)
