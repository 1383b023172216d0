"""Merged orders route together: the orders of one merge group (`ops.merge_candidates`, one
household within 30 minutes) ship from one warehouse with one carrier, so they can leave as
one parcel.

Two cases, both set-based around `routing.route`:
- members decided in the same run are folded into their group's lead (the earliest paid):
  one order with every member's lines, goods value and freight, routed once; each member
  then takes the lead's decision, with `merged_with` in its evidence;
- a member that arrives after a group-mate was already allocated follows it: when the mate's
  warehouse holds unlocked stock for every line of the new order, the new order ships from
  there with the mate's carrier (rule `merge_group`); otherwise it keeps its own decision and
  the evidence says why it could not follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

KEY = ["channel", "platform_order_no"]


@dataclass(frozen=True)
class FoldedOrders:
    """`orders` and `lines` with each group's members folded into its lead; `members`:
    channel, platform_order_no, lead_channel, lead_order_no, group_id of every non-lead."""

    orders: pd.DataFrame
    lines: pd.DataFrame
    members: pd.DataFrame


def fold_groups(orders: pd.DataFrame, lines: pd.DataFrame, groups: pd.DataFrame) -> FoldedOrders:
    """`groups`: group_id, channel, platform_order_no. Only groups with two or more members
    among `orders` fold; the lead is the earliest paid (then channel, order number)."""
    empty = pd.DataFrame(columns=[*KEY, "lead_channel", "lead_order_no", "group_id"])
    if groups.empty or orders.empty:
        return FoldedOrders(orders, lines, empty)
    present = groups.merge(orders[[*KEY, "paid_at"]], on=KEY)
    present = present[present.groupby("group_id")["channel"].transform("size") >= 2]
    if present.empty:
        return FoldedOrders(orders, lines, empty)
    present = present.sort_values(["group_id", "paid_at", *KEY])
    leads = present.groupby("group_id", sort=False).head(1)[["group_id", *KEY]]
    leads = leads.rename(columns={"channel": "lead_channel", "platform_order_no": "lead_order_no"})
    mapped = present.merge(leads, on="group_id")
    is_lead = (mapped["channel"] == mapped["lead_channel"]) & (
        mapped["platform_order_no"] == mapped["lead_order_no"]
    )
    members = mapped.loc[~is_lead, [*KEY, "lead_channel", "lead_order_no", "group_id"]]

    # the lead carries every member's goods value and freight
    totals = (
        mapped.merge(orders[[*KEY, "goods_value", "freight"]], on=KEY)
        .groupby(["lead_channel", "lead_order_no"], as_index=False)[["goods_value", "freight"]]
        .sum()
    )
    totals = totals.rename(
        columns={"lead_channel": "channel", "lead_order_no": "platform_order_no"}
    )
    folded = orders.merge(members[KEY], on=KEY, how="left", indicator=True)
    folded = folded[folded["_merge"] == "left_only"].drop(columns="_merge")
    folded = folded.merge(totals, on=KEY, how="left", suffixes=("", "_group"))
    for column in ("goods_value", "freight"):
        folded[column] = folded[f"{column}_group"].fillna(folded[column])
        folded = folded.drop(columns=f"{column}_group")

    # members' lines under their lead's key
    relabel = members.set_index(KEY)[["lead_channel", "lead_order_no"]]
    moved = lines.join(relabel, on=KEY)
    has_lead = moved["lead_channel"].notna()
    moved.loc[has_lead, "channel"] = moved.loc[has_lead, "lead_channel"]
    moved.loc[has_lead, "platform_order_no"] = moved.loc[has_lead, "lead_order_no"]
    moved = moved.drop(columns=["lead_channel", "lead_order_no"])
    return FoldedOrders(folded.reset_index(drop=True), moved.reset_index(drop=True), members)


def unfold_decisions(decisions: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """One decision per member again: each member copies its lead's decision; the evidence
    names the lead and the group."""
    if members.empty:
        return decisions
    leads = decisions.rename(
        columns={"channel": "lead_channel", "platform_order_no": "lead_order_no"}
    )
    copies = members.merge(leads, on=["lead_channel", "lead_order_no"])
    copies["inputs"] = [
        {**(inputs if isinstance(inputs, dict) else {}),
         "merged_with": {"channel": lc, "platform_order_no": ln}, "merge_group": gid}
        for inputs, lc, ln, gid in zip(
            copies["inputs"], copies["lead_channel"], copies["lead_order_no"],
            copies["group_id"], strict=True,
        )
    ]  # fmt: skip
    copies = copies.drop(columns=["lead_channel", "lead_order_no", "group_id"])
    out = pd.concat([decisions, copies[decisions.columns]], ignore_index=True)
    return out


def follow_allocated_mates(
    decisions: pd.DataFrame,
    mates: pd.DataFrame,
    lines: pd.DataFrame,
    stock: pd.DataFrame,
    now: datetime,
) -> pd.DataFrame:
    """Orders whose group-mate is already allocated (`mates`: channel, platform_order_no of
    the new order, mate_channel, mate_order_no, group_id, warehouse_id, carrier and the mate's
    promise_days, promised_delivery_at; the first row per order wins) ship from the mate's
    warehouse with its carrier when its unlocked `stock` (warehouse_id, sku, available) covers
    every line of the order. They leave in one parcel, so the mate's promise is theirs."""
    if mates.empty or decisions.empty:
        return decisions
    mates = mates.drop_duplicates(KEY)
    need = lines.merge(mates[[*KEY, "warehouse_id"]], on=KEY)
    need = need.groupby([*KEY, "warehouse_id", "sku"], as_index=False)["qty"].sum()
    need = need.merge(stock[["warehouse_id", "sku", "available"]], on=["warehouse_id", "sku"],
                      how="left")  # fmt: skip
    need["covered"] = need["available"].fillna(0) >= need["qty"]
    covered = need.groupby(KEY)["covered"].all()
    out = decisions.copy()
    index = out.set_index(KEY).index
    for column in ("warehouse_id", "carrier", "decision", "rule"):
        out[column] = out[column].astype(object)
    by_key = mates.set_index(KEY)
    follows = (
        index.isin(covered[covered].index) & out["decision"].isin(["ship", "split"]).to_numpy()
    )
    stays = index.isin(by_key.index) & ~follows
    rows = out.index[follows]
    mate = by_key.loc[index[follows]]
    moved = (out.loc[rows, "warehouse_id"].to_numpy() != mate["warehouse_id"].to_numpy()) | (
        out.loc[rows, "carrier"].to_numpy() != mate["carrier"].to_numpy()
    )
    out.loc[rows, "inputs"] = [
        {**(inputs if isinstance(inputs, dict) else {}),
         "merged_with": {"channel": mc, "platform_order_no": mn}, "merge_group": gid,
         "own_choice": {"warehouse_id": w, "carrier": c} if m else None}
        for inputs, mc, mn, gid, w, c, m in zip(
            out.loc[rows, "inputs"], mate["mate_channel"], mate["mate_order_no"],
            mate["group_id"], out.loc[rows, "warehouse_id"], out.loc[rows, "carrier"], moved,
            strict=True,
        )
    ]  # fmt: skip
    out.loc[rows, "warehouse_id"] = mate["warehouse_id"].to_numpy()
    out.loc[rows, "carrier"] = mate["carrier"].to_numpy()
    out.loc[rows, "decision"] = "ship"
    out.loc[rows, "rule"] = "merge_group"
    if "promise_days" in out and "promise_days" in mate:
        out.loc[rows, "promise_days"] = pd.to_numeric(mate["promise_days"]).to_numpy(float)
    if "promised_delivery_at" in out and "promised_delivery_at" in mate:
        out.loc[rows, "promised_delivery_at"] = pd.to_datetime(
            mate["promised_delivery_at"], utc=True
        ).to_numpy()
    if "decided_at" in out:
        out.loc[rows, "decided_at"] = pd.Timestamp(now)
    kept = out.index[stays]
    out.loc[kept, "inputs"] = [
        {**(inputs if isinstance(inputs, dict) else {}),
         "merge_group": gid, "merge_not_followed": "the group-mate's warehouse lacks stock "
         "for a line of this order (or this order needs a person)"}
        for inputs, gid in zip(out.loc[kept, "inputs"], by_key.loc[index[stays], "group_id"],
                               strict=True)
    ]  # fmt: skip
    return out
