"""Merge candidates (合单): orders of one household placed close together, across channels,
proposed for review so they can ship in one parcel.

Rule: same receiver phone and same receiver address (both normalised: digits of the phone,
the address without white space, lower-cased), each order placed (`created_at`) within
`merge.window_minutes` (config/inventory.yaml, 30) of the previous one of the same household.
A chain of such orders is one group; groups of two or more orders become candidates.

Never merged: cancelled or refunded orders (the platform's fold), orders held by review
(`ops.review_queue`: hold running without a release decision, or intercepted), orders
without a phone or an address, and orders of `merge.exclude_channels` (POS: a store sale is
taken over the counter, there is no parcel to share). Cash-on-delivery and pre-sale orders
must never merge too, but no source carries either today (no payment-method or pre-sale
field in any staging payload): `find_merge_candidates` takes `is_cod` / `is_presale` columns
and excludes them when a source adds them; the warehouse step fills them with false until
then.

`find_merge_candidates` is vectorised (sort + shift + cumsum); `write_merge_candidates` reads
the orders that may merge (SQL keeps those with a neighbour of the same phone digits in the
window: reading and keying all 1,000,000 orders was most of a 7 s pass), writes
`ops.merge_candidates` (the table is the current set: a group that dissolved is removed; an
unchanged row keeps its `found_at`), one transaction under an advisory lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import psycopg

from fulfillment.frames import allow_whole_reads, copy_frame, read_frame
from fulfillment.inventory_rules import InventoryRules
from fulfillment.inventory_store import INTERCEPT_DECISIONS
from fulfillment.ops_schema import ensure_ops_tables

CANDIDATE_COLUMNS = ("group_id", "channel", "platform_order_no", "reason")
_LETTERS = str.maketrans("0123456789", "ghijklmnop")
EXCLUSIONS = ("is_cod", "is_presale", "is_refunded", "is_cancelled", "is_held")


def _household(phone: pd.Series, address: pd.Series) -> pd.Series:
    p = phone.fillna("").astype(str).str.replace(r"\D", "", regex=True)
    a = address.fillna("").astype(str).str.replace(r"\s+", "", regex=True).str.lower()
    key = p + "|" + a
    return key.where((p != "") & (a != ""))


def find_merge_candidates(
    orders: pd.DataFrame,
    window_minutes: float = 30,
    exclude_channels: tuple[str, ...] = ("pos",),
) -> pd.DataFrame:
    """`orders`: channel, platform_order_no, receiver_phone, receiver_address, created_at and
    any of EXCLUSIONS (booleans). Returns CANDIDATE_COLUMNS, one row per order in a group."""
    if orders.empty:
        return pd.DataFrame(columns=list(CANDIDATE_COLUMNS))
    df = orders.copy()
    keep = ~df["channel"].isin(exclude_channels)
    for flag in EXCLUSIONS:
        if flag in df:
            keep &= ~df[flag].fillna(False).astype(bool)
    df = df[keep].copy()
    df["household"] = _household(df["receiver_phone"], df["receiver_address"])
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    df = df.dropna(subset=["household", "created_at"])
    df = df.sort_values(["household", "created_at", "channel", "platform_order_no"])
    gap = df["created_at"] - df.groupby("household")["created_at"].shift()
    starts = gap.isna() | (gap > pd.Timedelta(minutes=window_minutes))
    df["chain"] = starts.cumsum()
    size = df.groupby("chain")["chain"].transform("size")
    df = df[size >= 2].copy()
    if df.empty:
        return pd.DataFrame(columns=list(CANDIDATE_COLUMNS))
    first = df.groupby("chain").agg(
        household=("household", "first"),
        start=("created_at", "min"),
        end=("created_at", "max"),
        n=("platform_order_no", "size"),
        channels=("channel", lambda c: ",".join(sorted(set(c)))),
    )
    # letters only (as dbt's opaque_key): a hex digest may hold 11 digits a PII scan of the
    # marts reads as a mobile number (mb17444991552d6cd)
    first["group_id"] = [
        "m" + hashlib.sha256(f"{h}|{s.isoformat()}".encode()).hexdigest()[:16].translate(_LETTERS)
        for h, s in zip(first["household"], first["start"], strict=True)
    ]
    minutes = ((first["end"] - first["start"]).dt.total_seconds() / 60).round(1)
    first["reason"] = (
        "same phone and address: "
        + first["n"].astype(str)
        + " orders within "
        + minutes.astype(str)
        + " min ("
        + first["channels"]
        + ")"
    )
    out = df.join(first[["group_id", "reason"]], on="chain")
    return out[list(CANDIDATE_COLUMNS)].reset_index(drop=True)


# The orders that may be in a group: not excluded, and with another such order of the same
# phone digits within the window (a little more, in case). Only these (2 % at 1,000,000) go to
# `find_merge_candidates`, which applies the exact household key (phone digits and address):
# the ASCII digits of a phone are a function of Python's Unicode `\D`-stripped digits, so two
# orders of one household always share them here and nothing that could merge is left out.
_ORDERS = """
with eligible as (
    select o.channel, o.platform_order_no, o.receiver_phone, o.receiver_address, o.created_at,
           regexp_replace(o.receiver_phone, '[^0-9]', '', 'g') as phone_digits
    from intermediate.int_orders o
    left join ops.review_queue r using (channel, platform_order_no)
    where o.receiver_phone is not null and o.receiver_address is not null
        and o.created_at <= %(now)s
        and not (o.channel = any(%(exclude)s))
        and not coalesce(o.has_refund, false)
        and not coalesce(o.has_cancel, false)
        and not coalesce(lower(r.decision) = any(%(intercept)s)
                         or (r.hold_until > %(now)s and coalesce(r.decision, '') = ''), false)
),
neighbours as (
    select eligible.*,
           lag(created_at) over same_phone as previous_at,
           lead(created_at) over same_phone as next_at
    from eligible
    window same_phone as (partition by phone_digits order by created_at)
)
select channel, platform_order_no, receiver_phone, receiver_address, created_at,
       false as is_refunded, false as is_cancelled, false as is_held
from neighbours
where created_at - previous_at <= %(window)s or next_at - created_at <= %(window)s
"""

_WRITE = """
insert into ops.merge_candidates as m (group_id, channel, platform_order_no, reason, found_at)
select group_id, channel, platform_order_no, reason, %(now)s::timestamptz from _merge
on conflict (channel, platform_order_no) do update set
    group_id = excluded.group_id, reason = excluded.reason, found_at = excluded.found_at
where (m.group_id, m.reason) is distinct from (excluded.group_id, excluded.reason)
"""


@dataclass
class MergeRunReport:
    orders: int = 0
    groups: int = 0
    cross_channel_groups: int = 0
    removed: int = 0
    written: int = 0
    examples: pd.DataFrame | None = field(default=None)


def write_merge_candidates(
    conn: psycopg.Connection, rules: InventoryRules, now: datetime
) -> MergeRunReport:
    """Find the candidates among all orders and make `ops.merge_candidates` that set."""
    ensure_ops_tables(conn)
    report = MergeRunReport()
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.merge_candidates'))")
        allow_whole_reads(conn)  # every order of the merge window
        orders = read_frame(
            conn,
            _ORDERS,
            {
                "now": now,
                "intercept": INTERCEPT_DECISIONS,
                "exclude": list(rules.merge.exclude_channels),
                "window": timedelta(minutes=rules.merge.window_minutes, seconds=1),
            },
        )
        found = find_merge_candidates(
            orders, rules.merge.window_minutes, rules.merge.exclude_channels
        )
        copy_frame(
            conn,
            "_merge",
            "group_id text, channel text, platform_order_no text, reason text",
            found,
        )
        with conn.cursor() as cur:
            cur.execute(
                "delete from ops.merge_candidates m where not exists (select 1 from _merge n "
                "where n.channel = m.channel and n.platform_order_no = m.platform_order_no)"
            )
            report.removed = max(cur.rowcount, 0)
            cur.execute(_WRITE, {"now": now})
            report.written = max(cur.rowcount, 0)
    report.orders = len(found)
    report.groups = int(found["group_id"].nunique())
    report.cross_channel_groups = int(
        (found.groupby("group_id")["channel"].nunique() > 1).sum() if len(found) else 0
    )
    if len(found):
        report.examples = found.head(6).reset_index(drop=True)
    return report
