"""Where buyers live: real province/city/district triples with coordinates, street addresses.

The triples come from cpca's bundled `resources/adcodes.csv` (the same table OrderPulse uses
to place an address), so every generated mainland address is one cpca recognises. For the
four municipalities the city is written as the province (北京市/北京市/朝阳区), as the
marketplaces do; county-level units directly under a province (仙桃市…) are left out because
they have no city. Hong Kong, Macau and Taiwan are left out (they ship as cross-border).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

REMOTE_PROVINCES = ("新疆维吾尔自治区", "西藏自治区", "青海省")

# Relative e-commerce order share per province (rough, east-heavy); unlisted provinces get 1.
# Remote provinces are drawn separately (see world.py) so that their share is controlled.
_PROVINCE_WEIGHT = {
    "广东省": 13, "浙江省": 9, "江苏省": 9, "上海市": 6, "北京市": 5, "山东省": 6,
    "福建省": 4, "四川省": 4, "河南省": 4, "湖北省": 3.5, "湖南省": 3, "安徽省": 3,
    "河北省": 3, "重庆市": 2.5, "天津市": 2, "陕西省": 2, "辽宁省": 2, "江西省": 2,
    "广西壮族自治区": 1.5, "云南省": 1.5, "山西省": 1.2, "黑龙江省": 1, "吉林省": 1,
    "贵州省": 1, "内蒙古自治区": 0.8, "甘肃省": 0.6, "海南省": 0.6, "宁夏回族自治区": 0.3,
}  # fmt: skip

_MUNICIPALITY_CITY = {"市辖区", "县"}


@dataclass(frozen=True, slots=True)
class District:
    adcode: str
    province: str
    city: str
    district: str
    latitude: float
    longitude: float

    @property
    def remote(self) -> bool:
        return self.province in REMOTE_PROVINCES


@cache
def districts() -> tuple[District, ...]:
    """Every mainland district with its province, city and coordinates (stable order)."""
    names: dict[str, tuple[str, float | None, float | None]] = {}
    text = resources.files("cpca.resources").joinpath("adcodes.csv").read_text("utf-8")
    for row in csv.DictReader(text.splitlines()):
        lon, lat = row["longitude"], row["latitude"]
        names[row["adcode"][:6]] = (
            row["name"],
            float(lat) if lat else None,
            float(lon) if lon else None,
        )
    out = []
    for code, (name, lat, lon) in sorted(names.items()):
        if code.endswith("00") or code[:2] in ("71", "81", "82") or lat is None or lon is None:
            continue
        province = names.get(code[:2] + "0000")
        city = names.get(code[:4] + "00")
        if province is None or city is None:
            continue
        city_name = province[0] if city[0] in _MUNICIPALITY_CITY else city[0]
        if city_name.endswith("直辖县级行政区划"):
            continue
        out.append(District(code, province[0], city_name, name, lat, lon))
    return tuple(out)


@cache
def district_index() -> dict[tuple[str, str, str], int]:
    """(province, city, district) -> position in `districts()`."""
    return {(d.province, d.city, d.district): i for i, d in enumerate(districts())}


@cache
def district_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(latitude, longitude, draw weight, is_remote) per district, aligned with `districts()`.

    The weight spreads each province's share evenly over its districts; remote provinces get
    weight 0 here (they are drawn on purpose, with a controlled share)."""
    ds = districts()
    lat = np.array([d.latitude for d in ds])
    lon = np.array([d.longitude for d in ds])
    remote = np.array([d.remote for d in ds])
    provinces = [d.province for d in ds]
    counts: dict[str, int] = {}
    for p in provinces:
        counts[p] = counts.get(p, 0) + 1
    weight = np.array([_PROVINCE_WEIGHT.get(p, 1.0) / counts[p] for p in provinces])
    weight[remote] = 0.0
    return lat, lon, weight / weight.sum(), remote


def haversine_km(lat1, lon1, lat2, lon2):  # noqa: ANN001, ANN201 - floats or numpy arrays
    """Great-circle distance in km (works element-wise on numpy arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


def locate(province: str, city: str, district: str) -> tuple[float, float] | None:
    """Coordinates of a district, or of the province's first district, or None."""
    idx = district_index().get((province, city, district))
    if idx is not None:
        d = districts()[idx]
        return d.latitude, d.longitude
    for d in districts():
        if d.province == province or d.province.startswith(province):
            return d.latitude, d.longitude
    return None


# -- street addresses -------------------------------------------------------------------------
ROADS = (
    "人民路", "中山路", "解放路", "建设路", "和平路", "新华路", "长江路", "黄河路", "文化路",
    "胜利路", "朝阳路", "青年路", "光明路", "幸福路", "振兴路", "学府路", "滨江路", "湖滨路",
    "南京路", "北京路", "延安路", "花园路", "东风路", "迎宾大道", "世纪大道", "科技路",
    "体育路", "工农路", "团结路", "育才路", "金桥路", "望江路", "春晖路", "凤凰路",
)  # fmt: skip
COMMUNITIES = (
    "阳光花园", "锦绣家园", "翠苑小区", "金色家园", "碧桂园", "万科城", "绿地新都会",
    "保利花园", "幸福里", "书香苑", "紫荆苑", "丽景湾", "东方明珠苑", "和谐家园", "龙湖天街",
    "枫林绿洲", "滨江华府", "润园", "恒大名都", "新城花苑",
)  # fmt: skip
PARKS = ("高新技术工业园", "经济开发区工业园", "科技工业园", "智慧产业园", "电子商务产业园")
COMPANIES = (
    "华腾电子科技有限公司", "恒信贸易有限公司", "远航物流有限公司", "博源信息技术有限公司",
    "鑫达机械制造有限公司", "海纳百货有限公司", "启明软件有限公司", "中联包装材料有限公司",
    "金石餐饮管理有限公司", "天成建材有限公司",
)  # fmt: skip
B2B_WORDS = ("公司", "有限公司", "工业园")


def home_address(road: int, number: int, community: int, building: int, room: int) -> str:
    return (
        f"{ROADS[road % len(ROADS)]}{number}号{COMMUNITIES[community % len(COMMUNITIES)]}"
        f"{building}栋{room // 100 % 6 + 1}单元{room}室"
    )


def business_address(road: int, number: int, park: int, company: int, floor: int) -> str:
    park_name = PARKS[park % len(PARKS)]
    company_name = COMPANIES[company % len(COMPANIES)]
    return f"{ROADS[road % len(ROADS)]}{number}号{park_name}{floor}号楼 {company_name}"


# -- overseas receivers (cross-border orders) --------------------------------------------------
@dataclass(frozen=True, slots=True)
class Abroad:
    country: str
    province: str
    city: str
    district: str
    phone_prefix: str
    street: str


ABROAD = (
    Abroad("SG", "Singapore", "Singapore", "Central Region", "+65 8", "Orchard Road"),
    Abroad("MY", "Selangor", "Petaling Jaya", "Damansara", "+60 12", "Jalan SS 2"),
    Abroad("US", "California", "Los Angeles", "San Gabriel", "+1 626", "Valley Blvd"),
    Abroad("JP", "東京都", "東京", "新宿区", "+81 90", "西新宿"),
    Abroad("AU", "New South Wales", "Sydney", "Chatswood", "+61 4", "Victoria Ave"),
    Abroad("CA", "British Columbia", "Vancouver", "Richmond", "+1 604", "No. 3 Road"),
    Abroad("HK", "香港特别行政区", "香港", "油尖旺区", "+852 6", "弥敦道"),
)


def abroad_address(idx: int, number: int) -> tuple[Abroad, str]:
    a = ABROAD[idx % len(ABROAD)]
    return a, f"{number} {a.street}"


def sla_hours(distance_km: float, remote: bool, abroad: bool) -> int:
    """Hours from shipping that the carrier promises delivery within."""
    if abroad:
        return 240
    if remote:
        return 144
    if distance_km < 300:
        return 48
    if distance_km < 1200:
        return 72
    return 96


def ip_string(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


# First octets of address blocks allocated to Chinese ISPs (telecom, unicom, mobile).
CN_IP_FIRST_OCTETS = (36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115,
                      116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 180, 182, 183, 218, 220,
                      221, 222, 223)  # fmt: skip


def sla_hours_array(distance_km: np.ndarray, remote: np.ndarray, abroad: np.ndarray) -> np.ndarray:
    """`sla_hours` element-wise."""
    hours = np.select([distance_km < 300, distance_km < 1200], [48, 72], 96)
    hours = np.where(remote, 144, hours)
    return np.where(abroad, 240, hours).astype(np.int64)
