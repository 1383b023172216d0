"""The edge rules: what an order row must look like before it may enter `raw`.

A row that breaks a rule goes to `raw.rejected_rows` with every problem it has (field, value,
rule), and the rest of its batch loads. The rules exist because one bad row downstream stops
every channel: an amount that overflows `numeric(14,2)` fails `int_orders` for all ten
channels, a 2099 update time freezes an order (every later correction looks older), a negative
price reaches `fct_orders` as delivered.

Two front doors, one set of limits (`EdgeLimits`):
- every channel's rows, in `raw_loader.load_orders`: the batch is checked in SQL over the
  staged rows (`reject_invalid_staged`), reading each payload with the same expressions and
  casts as the channel's dbt staging model (yuan strings, fen integers, Beijing-time strings,
  unix seconds/milliseconds), so that whatever passes here casts there (`pg_input_is_valid`,
  PostgreSQL 16 or later: the embedded server is 18);
- order files, in `csv_orders.parse_orders`: the same limits column-wise over the file
  (`amount_problems`, `time_problems`, ...), so a rejected row keeps its line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pandas as pd
import psycopg


@dataclass(frozen=True)
class EdgeLimits:
    """Bounds of a plausible value. Amounts: the warehouse keeps yuan as numeric(14,2) (below
    10^12); the cap leaves room for sums of many amounts (goods + freight, qty x price)."""

    max_amount: Decimal = Decimal("10000000000")  # yuan, exclusive
    max_qty: int = 1_000_000
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    future_skew: timedelta = timedelta(hours=1)  # a platform clock a little ahead is fine
    max_text: int = 2000  # characters of one free-text field
    max_order_no: int = 100
    max_payload: int = 256 * 1024  # characters of one order's JSON


LIMITS = EdgeLimits()

# -- the fields each channel's staging model casts ------------------------------------------------
Kind = Literal["yuan", "fen", "qty", "beijing_ts", "unix_s", "unix_ms", "text"]


@dataclass(frozen=True)
class Rule:
    path: str  # dotted path from the order (or item) object, e.g. `pay_info.total_fee`
    kind: Kind


@dataclass(frozen=True)
class ChannelRules:
    fields: tuple[Rule, ...]
    items: str | None = None  # dotted path of the item lines from the order object
    item_fields: tuple[Rule, ...] = ()
    root: str = "payload"  # SQL expression of the order object within `payload`
    alt_items: str | None = None  # a second path of the lines when the first is missing


def _rules(kind: Kind, *paths: str) -> tuple[Rule, ...]:
    return tuple(Rule(p, kind) for p in paths)


_DECRYPTED = _rules("text", "_decrypted.name", "_decrypted.phone", "_decrypted.address")

# Kept beside the staging models they mirror (dbt_project/models/staging/<channel>/).
CHANNEL_RULES: dict[str, ChannelRules] = {
    "taobao": ChannelRules(
        _rules("yuan", "total_fee", "discount_fee", "post_fee", "payment", "customs.declared_value")
        + _rules("fen", "coupon_fee")
        + _rules("beijing_ts", "created", "pay_time", "consign_time", "end_time", "modified")
        + _rules("text", "buyer_message", "seller_memo", "buyer_nick")
        + _DECRYPTED,
        items="orders.order",
        item_fields=_rules("yuan", "price", "discount_fee", "divide_order_fee", "payment")
        + _rules("qty", "num")
        + _rules("text", "title"),
    ),
    "jd": ChannelRules(
        _rules("yuan", "orderTotalPrice", "freightPrice", "orderPayment", "sellerDiscount")
        + _rules("yuan", "customs.declaredValue")
        + _rules("beijing_ts", "orderStartTime", "paymentConfirmTime", "shipTime")
        + _rules("beijing_ts", "orderEndTime", "modified")
        + _rules("text", "orderRemark", "venderRemark", "pin")
        + _DECRYPTED,
        items="itemInfoList",
        item_fields=_rules("yuan", "jdPrice")
        + _rules("qty", "itemTotal")
        + _rules("text", "skuName"),
    ),
    "douyin": ChannelRules(
        _rules("fen", "order_amount", "promotion_platform_amount", "promotion_talent_amount")
        + _rules("fen", "promotion_shop_amount", "promotion_amount", "post_amount", "pay_amount")
        + _rules("yuan", "customs.declared_value")
        + _rules("unix_s", "create_time", "pay_time", "ship_time", "finish_time", "update_time")
        + _rules("text", "buyer_words", "seller_words", "user_nick")
        + _DECRYPTED,
        items="sku_order_list",
        item_fields=_rules("fen", "origin_amount", "sum_amount", "promotion_amount", "pay_amount")
        + _rules("qty", "item_num")
        + _rules("text", "product_name"),
    ),
    "pdd": ChannelRules(
        _rules("yuan", "goods_amount", "platform_discount", "seller_discount", "discount_amount")
        + _rules("yuan", "postage", "pay_amount", "customs.declared_value")
        + _rules("beijing_ts", "created_time", "pay_time", "shipping_time", "receive_time")
        + _rules("beijing_ts", "updated_at")
        + _rules("text", "buyer_memo", "remark", "buyer_nick")
        + _DECRYPTED,
        items="item_list",
        item_fields=_rules("yuan", "goods_price")
        + _rules("qty", "goods_count")
        + _rules("text", "goods_name"),
    ),
    "kuaishou": ChannelRules(
        _rules("fen", "orderBaseInfo.totalFee", "orderBaseInfo.platformDiscountFee")
        + _rules("fen", "orderBaseInfo.sellerDiscountFee", "orderBaseInfo.discountFee")
        + _rules("fen", "orderBaseInfo.expressFee", "orderBaseInfo.payAmount")
        + _rules("yuan", "customs.declaredValue")
        + _rules("unix_ms", "orderBaseInfo.createTime", "orderBaseInfo.payTime")
        + _rules("unix_ms", "orderBaseInfo.sendTime", "orderBaseInfo.recvTime")
        + _rules("unix_ms", "orderBaseInfo.updateTime")
        + _rules("text", "orderBaseInfo.remark", "orderBaseInfo.sellerRemark", "sellerNote")
        + _rules("text", "orderBaseInfo.buyerNick")
        + _DECRYPTED,
        items="orderItemInfoList",
        alt_items="orderItemInfo",
        item_fields=_rules("fen", "price", "discountFee")
        + _rules("qty", "num")
        + _rules("text", "itemTitle"),
    ),
    "youzan": ChannelRules(
        _rules("yuan", "pay_info.total_fee", "pay_info.post_fee", "pay_info.payment")
        + _rules("yuan", "customs.declared_value")
        + _rules("beijing_ts", "order_info.created", "order_info.pay_time")
        + _rules("beijing_ts", "order_info.consign_time", "order_info.success_time")
        + _rules("beijing_ts", "order_info.close_time", "order_info.update_time")
        + _rules("text", "remark_info.buyer_message", "remark_info.trade_memo")
        + _rules("text", "order_info.buyer_message", "buyer_info.fans_nickname"),
        items="orders",
        item_fields=_rules("yuan", "price", "payment")
        + _rules("qty", "num")
        + _rules("text", "title"),
        root="coalesce(payload -> 'full_order_info', payload)",
    ),
}

# The normalised payload of file, SFTP and database sources (connectors/csv_orders.py).
NORMALISED_RULES = ChannelRules(
    _rules("yuan", "goods_value", "platform_discount", "shop_discount", "discount_amount")
    + _rules("yuan", "freight", "paid_amount", "customs.declared_value")
    + _rules("beijing_ts", "created_at", "paid_at", "shipped_at", "delivered_at", "closed_at")
    + _rules("beijing_ts", "modified_at")
    + _rules("text", "buyer_note", "seller_note", "receiver_name", "receiver_address")
    + _rules("text", "buyer_nick")
    + _DECRYPTED,
    items="items",
    item_fields=_rules("yuan", "price", "unit_price")
    + _rules("qty", "qty")
    + _rules("text", "title"),
)


def channel_rules(channel: str) -> ChannelRules:
    """A marketplace's own rules, else the normalised payload's (every other source)."""
    return CHANNEL_RULES.get(channel, NORMALISED_RULES)


# -- SQL over the staged batch ------------------------------------------------------------------
_OFFSET = r"([+-]\d{2}:?\d{2}|Z)$"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(dotted: str) -> str:
    return _lit("{" + ",".join(f'"{p}"' for p in dotted.split(".")) + "}")


def _values(obj: str, rules: tuple[Rule, ...], prefix: str) -> tuple[str, str]:
    """Two select lists, each value read from the JSON once: the text of every rule's field
    (`<prefix>v<i>`), then its value as the staging cast reads it (`<prefix>n<i>`: numeric
    yuan, integer or timestamptz; null when blank, unset or not castable)."""
    texts, typed = [], []
    for i, rule in enumerate(rules):
        v = f"{prefix}v{i}"
        texts.append(f"nullif(trim({obj} #>> {_path(rule.path)}), '') as {v}")
        if rule.kind == "yuan":  # to_yuan: separators and currency signs dropped first
            clean = f"regexp_replace({v}, '[^0-9.eE+-]', '', 'g')"
            value = f"case when pg_input_is_valid({clean}, 'numeric') then ({clean})::numeric end"
        elif rule.kind == "fen":
            value = f"case when pg_input_is_valid({v}, 'numeric') then {v}::numeric / 100 end"
        elif rule.kind == "qty":
            value = f"case when pg_input_is_valid({v}, 'integer') then {v}::integer end"
        elif rule.kind == "beijing_ts":  # beijing_ts: an offset is kept, else Beijing time
            value = (
                f"case when {v} !~ '^\\d{{4}}-' or {v} like '0001-01-01%%' then null"
                f" when {v} ~ '{_OFFSET}' then case when pg_input_is_valid({v}, 'timestamptz')"
                f" then {v}::timestamptz end"
                f" when pg_input_is_valid({v}, 'timestamp')"
                f" then {v}::timestamp at time zone 'Asia/Shanghai' end"
            )
        elif rule.kind in ("unix_s", "unix_ms"):
            per_second = "1000.0" if rule.kind == "unix_ms" else "1.0"
            # compared as numbers first: a huge value must not reach to_timestamp
            value = (
                f"case when not pg_input_is_valid({v}, 'bigint') or {v} = '0' then null"
                f" when abs({v}::numeric) / {per_second} >= 1e11 then 'infinity'::timestamptz"
                f" else to_timestamp({v}::bigint / {per_second}) end"
            )
        else:
            value = "null::text"
        typed.append(f"{value} as {prefix}n{i}")
    return ", ".join(texts) or "null as _", ", ".join(typed) or "null as _"


def _problems(rules: tuple[Rule, ...], prefix: str, label: str = "") -> list[str]:
    """One `case` per rule naming the field, its value and what is wrong (or null)."""
    out = []
    for i, rule in enumerate(rules):
        v, n = f"{prefix}v{i}", f"{prefix}n{i}"
        name = f"{label}{_lit(rule.path)}"
        shown = f"{name} || ' ' || quote_literal(left({v}, 60))"
        if rule.kind == "text":
            out.append(
                f"case when char_length({v}) > %(max_text)s then {name} || ' has '"
                f" || char_length({v}) || ' characters (at most ' || %(max_text)s || ')' end"
            )
        elif rule.kind in ("yuan", "fen"):
            out.append(
                f"case when {v} is null then null"
                f" when {n} is null then {shown} || ' is not a number'"
                f" when {n} < 0 then {shown} || ' is negative'"
                f" when {n} >= %(max_amount)s then {shown}"
                f" || ' is out of range (yuan below ' || %(max_amount)s || ')' end"
            )
        elif rule.kind == "qty":
            out.append(
                f"case when {v} is null then null"
                f" when {n} is null then {shown} || ' is not a whole number'"
                f" when {n} < 0 then {shown} || ' is negative'"
                f" when {n} > %(max_qty)s then {shown}"
                f" || ' is out of range (at most ' || %(max_qty)s || ')' end"
            )
        else:
            unset = f"{v} like '0001-01-01%%'" if rule.kind == "beijing_ts" else f"{v} = '0'"
            out.append(
                f"case when {v} is null or {unset} then null"
                f" when {n} is null then {shown} || ' is not a valid time'"
                f" when {n} < %(earliest)s then {shown} || ' is before ' || %(earliest_text)s"
                f" when {n} > %(latest)s then {shown} || ' is in the future (after '"
                f" || %(latest_text)s || ')' end"
            )
    return out


_STAGE_PROBLEMS = [
    "case when s.source_modified_at is null then 'no modified time'"
    " when s.source_modified_at < %(earliest)s then 'modified time '"
    " || s.source_modified_at || ' is before ' || %(earliest_text)s"
    " when s.source_modified_at > %(latest)s then 'modified time '"
    " || s.source_modified_at || ' is in the future (after ' || %(latest_text)s || ')' end",
    "case when char_length(s.platform_order_no) > %(max_order_no)s then 'order number has '"
    " || char_length(s.platform_order_no) || ' characters (at most ' || %(max_order_no)s || ')'"
    " when trim(s.platform_order_no) = '' then 'order number is blank' end",
]


def checked_sql(channel: str) -> str:
    """A select over `_raw_stage`: platform_order_no, payload and `problems` (all the row's
    problems joined by '; ', or ''). Each field is read and cast once per row (`offset 0`
    keeps the planner from inlining the lateral values back into every check)."""
    rules = channel_rules(channel)
    root = rules.root.replace("payload", "s.payload")
    texts, typed = _values("o.o", rules.fields, "")
    order = _problems(rules.fields, "") + _STAGE_PROBLEMS
    items = "null"
    if rules.items and rules.item_fields:
        lines = f"o.o #> {_path(rules.items)}"
        if rules.alt_items:
            lines = f"coalesce({lines}, o.o #> {_path(rules.alt_items)})"
        item_texts, item_typed = _values("i.l", rules.item_fields, "i_")
        label = f"{_lit(rules.items + '[')} || i.n || {_lit('].')} || "
        checks = ", ".join(_problems(rules.item_fields, "i_", label))
        items = (
            f"(select string_agg(nullif(concat_ws('; ', {checks}), ''), '; ' order by i.n)"
            f" from jsonb_array_elements(case jsonb_typeof({lines}) when 'array' then {lines}"
            f" when 'object' then jsonb_build_array({lines}) else '[]'::jsonb end)"
            f" with ordinality as i (l, n)"
            f" cross join lateral (select {item_texts} offset 0) as it"
            f" cross join lateral (select {item_typed} offset 0) as iv)"
        )
    return (
        f"select s.platform_order_no, s.payload, concat_ws('; ',"
        f" nullif(concat_ws('; ', {', '.join(order)}), ''), {items}) as problems"
        f" from _raw_stage as s"
        f" cross join lateral (select ({root}) as o offset 0) as o"
        f" cross join lateral (select {texts} offset 0) as t"
        f" cross join lateral (select {typed} offset 0) as v"
    )


_REJECT = """
with checked as (
    {checked}
),
bad as (
    select platform_order_no, payload, 'order ' || platform_order_no || ': ' || problems as reason
    from checked where problems <> ''
),
gone as (
    delete from _raw_stage s using bad where s.platform_order_no = bad.platform_order_no
)
insert into raw.rejected_rows (source, file, raw_text, reason, run_id)
select %(source)s, %(file)s, left(payload::text, %(max_raw_text)s), reason, %(run_id)s from bad
-- the same version pulled again (overlapping windows) is on record already
where not exists (
    select 1 from raw.rejected_rows r
    where r.source = %(source)s and r.file is not distinct from %(file)s
      and r.raw_text = left(bad.payload::text, %(max_raw_text)s)
)
"""


def sql_params(now: datetime, limits: EdgeLimits = LIMITS) -> dict[str, object]:
    latest = now + limits.future_skew
    return {
        "max_amount": limits.max_amount,
        "max_qty": limits.max_qty,
        "max_text": limits.max_text,
        "max_order_no": limits.max_order_no,
        "earliest": limits.earliest,
        "earliest_text": limits.earliest.date().isoformat(),
        "latest": latest,
        "latest_text": latest.isoformat(timespec="seconds"),
        "max_raw_text": 10_000,
    }


def reject_invalid_staged(
    cur: psycopg.Cursor,
    channel: str,
    *,
    now: datetime | None = None,
    run_id: str | None = None,
    file: str | None = None,
    limits: EdgeLimits = LIMITS,
) -> int:
    """Move the rows of `_raw_stage` that break an edge rule to `raw.rejected_rows` (source
    `channel`, reason `order <no>: <problem>; <problem>…`); returns how many."""
    params = sql_params(now or datetime.now(UTC), limits)
    params.update(source=channel, file=file, run_id=run_id)
    before = cur.execute("select count(*) from _raw_stage").fetchone()[0]
    cur.execute(_REJECT.format(checked=checked_sql(channel)), params)
    staged = cur.execute("select count(*) from _raw_stage").fetchone()[0]
    return before - staged


def reject_rows(
    cur: psycopg.Cursor,
    channel: str,
    rows: list[tuple[str, str, str]],
    *,
    run_id: str | None = None,
    file: str | None = None,
) -> None:
    """Record rows refused before staging: (order no, raw text, problem)."""
    cur.executemany(
        "insert into raw.rejected_rows (source, file, raw_text, reason, run_id)"
        " values (%s, %s, %s, %s, %s)",
        [(channel, file, text[:10_000], f"order {no}: {why}", run_id) for no, text, why in rows],
    )


# -- column-wise checks for order files (pandas) --------------------------------------------------
def amount_problems(normal: pd.Series, label: str, limits: EdgeLimits = LIMITS) -> pd.Series:
    """Problems (or None) of normalised decimal strings such as `-5.00` or `1000000000000.00`."""
    numbers = as_floats(normal)
    shown = label + " '" + normal.astype("object") + "'"
    out = pd.Series(None, index=normal.index, dtype="object")
    out = out.mask((numbers < 0).to_numpy(), shown + " is negative")
    huge = (numbers.abs() >= float(limits.max_amount)).to_numpy()
    return out.mask(huge, shown + f" is out of range (yuan below {limits.max_amount})")


def qty_problems(values: pd.Series, label: str, limits: EdgeLimits = LIMITS) -> pd.Series:
    numbers = as_floats(values)
    out = pd.Series(None, index=values.index, dtype="object")
    shown = label + " '" + values.astype("object") + "'"
    too_many = shown + f" is out of range (at most {limits.max_qty})"
    return out.mask((numbers > limits.max_qty).to_numpy(), too_many)


def time_problems(
    iso: pd.Series, label: str, now: datetime, limits: EdgeLimits = LIMITS
) -> pd.Series:
    """Problems of ISO 8601 strings (with offset) before `earliest` or after now + skew."""
    moments = pd.to_datetime(iso.where(iso != ""), format="ISO8601", utc=True, errors="coerce")
    latest = now + limits.future_skew
    shown = label + " '" + iso.astype("object") + "'"
    out = pd.Series(None, index=iso.index, dtype="object")
    early = (moments < limits.earliest).fillna(False).to_numpy(dtype=bool)
    out = out.mask(early, shown + f" is before {limits.earliest.date()}")
    late = (moments > latest).fillna(False).to_numpy(dtype=bool)
    return out.mask(
        late, shown + f" is in the future (after {latest.isoformat(timespec='seconds')})"
    )


def text_problems(values: pd.Series, label: str, limits: EdgeLimits = LIMITS) -> pd.Series:
    lengths = values.str.len().fillna(0).astype("int64")
    out = pd.Series(None, index=values.index, dtype="object")
    message = label + " has " + lengths.astype(str) + f" characters (at most {limits.max_text})"
    return out.mask((lengths > limits.max_text).to_numpy(), message)


def as_floats(values: pd.Series) -> pd.Series:
    """Numbers of decimal strings as float64 (NaN for blank or unparsable: not judged here)."""
    text = values.astype("object")
    return pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
