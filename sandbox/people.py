"""Buyers' names, phone numbers, devices and notes (the vocabulary the generator draws from)."""

from __future__ import annotations

SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
    "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏",
    "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金",
    "石", "廖", "贾", "夏", "韦", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛",
    "欧阳", "司马", "上官",
)  # fmt: skip
GIVEN = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "建", "文", "辉", "鑫",
    "宇", "浩", "晨", "欣", "怡", "婷", "雪", "琳", "佳", "梓", "涵", "子", "轩", "博", "思",
    "雨", "泽", "嘉", "一", "诺", "悦", "然", "航", "瑞", "俊", "凯", "晓", "春", "海", "燕",
)  # fmt: skip

# Mainland mobile prefixes in use (China Mobile, Unicom, Telecom, Broadnet), without the
# virtual-operator prefixes 170/171 which the generator uses only on purpose.
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "150",
    "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177",
    "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198",
    "199",
)  # fmt: skip
VIRTUAL_PREFIXES = ("170", "171")

DEVICES = (
    "iPhone 15 / iOS 17", "iPhone 13 / iOS 16", "HUAWEI Mate 60 / HarmonyOS 4",
    "Xiaomi 14 / Android 14", "OPPO Reno11 / Android 14", "vivo X100 / Android 14",
    "HONOR 90 / Android 13", "PC / Chrome 120", "Mac / Safari 17", "微信小程序 / iOS",
    "微信小程序 / Android",
)  # fmt: skip

BUYER_NOTES = (
    "请尽快发货，谢谢", "不要放快递柜，直接送到家", "周末在家，工作日请放前台", "麻烦发顺丰",
    "送人的，请不要放价格单", "颜色请和图片一致", "请帮忙多包一层气泡膜", "收货前请先电话联系",
    "开发票，抬头见留言", "孩子过敏，请确认成分表",
)  # fmt: skip
SELLER_NOTES = ("已核实收货地址", "老客户，赠送小样", "VIP客户优先发货", "赠品已备注")


def person_name(surname: int, given1: int, given2: int) -> str:
    """given2 < 0 means a one-character given name."""
    name = SURNAMES[surname % len(SURNAMES)] + GIVEN[given1 % len(GIVEN)]
    return name + GIVEN[given2 % len(GIVEN)] if given2 >= 0 else name


def device_fingerprint(number: int) -> str:
    """A device that identifies one handset (a phone model plus its fingerprint), unlike the
    bare model names above that thousands of buyers share."""
    return f"{DEVICES[number % len(DEVICES)]} #{number:06x}"
