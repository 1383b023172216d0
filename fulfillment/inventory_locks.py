"""Inventory locks (库存锁定) and the pause-sale list, as plain functions over DataFrames.

A paid order that has not left the warehouse holds its units: one lock per order line (SKU)
at one warehouse. The database step (fulfillment/inventory_store.py) reads the open order
lines, the WMS stock and the current locks, calls `plan_locks`, and writes
`ops.inventory_locks`; `pause_sale_list` turns the stock left after the locks into
`ops.pause_sale`.

Which warehouse a line locks at, first that applies (the `basis` column):
1. `wms`: the warehouse the WMS itself allocated the order to (its latest event naming one):
   the units sit there whatever routing proposed.
2. `routing`: the warehouse `ops.routing_decisions` chose (a split's part for that SKU).
3. `held`: the warehouse of the line's current lock (routing not decided yet, or it sent the
   order to manual review: the lock stays where it was).
4. `provisional`: before routing decided, the warehouse with the most units of the SKU on hand
   (ties: the smallest id). The lock moves when routing or the WMS decides.
5. `unstocked`: no warehouse holds the SKU at all: warehouse `-`, always oversold.

Stock basis: the WMS's `on_hand` (units physically there). OrderPulse's locks are the
reservations of every paid, unshipped order; the WMS's own `locked` column counts those same
orders, so subtracting both would count them twice.

Allocation per (warehouse, SKU): lines that were already locked there first (a promise is not
taken back while stock lasts), then by payment time (first paid, first served), then by order
key. A line is `locked` while the running total fits in `on_hand`, else `oversold`. The rule is
strict: once a line does not fit, later lines of that warehouse and SKU wait too (no smaller,
later order overtakes an earlier buyer). So the locked units of a warehouse and SKU never exceed
its on-hand stock: available stock (on_hand - locked) is never negative. `oversold` lines hold
nothing; they lock as soon as a restock (or a release) makes room, on the next run.
"""

from __future__ import annotations

import pandas as pd

LOCKED, OVERSOLD, RELEASED = "locked", "oversold", "released"
ACTIVE_STATES = (LOCKED, OVERSOLD)
NO_WAREHOUSE = "-"
KEY = ["channel", "platform_order_no", "sku"]
PLAN_COLUMNS = (
    "channel",
    "platform_order_no",
    "sku",
    "warehouse_id",
    "qty",
    "state",
    "basis",
    "paid_at",
)
PAUSE_COLUMNS = ("sku", "reason", "sellable", "threshold")


def _stock_on_hand(stock: pd.DataFrame) -> pd.DataFrame:
    """One row per (warehouse_id, sku) with on_hand >= 0 (missing or negative counts as 0)."""
    frame = stock.reindex(columns=["warehouse_id", "sku", "on_hand"]).copy()
    frame["on_hand"] = pd.to_numeric(frame["on_hand"], errors="coerce").fillna(0).clip(lower=0)
    frame = frame.dropna(subset=["warehouse_id", "sku"])
    frame[["warehouse_id", "sku"]] = frame[["warehouse_id", "sku"]].astype(object)
    return frame.groupby(["warehouse_id", "sku"], as_index=False, sort=False)["on_hand"].sum()


def _empty_plan() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in PLAN_COLUMNS})


def plan_locks(
    lines: pd.DataFrame, stock: pd.DataFrame, existing: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The lock of every open order line.

    `lines`: channel, platform_order_no, sku, qty, paid_at and optional wms_warehouse,
    routed_warehouse (null when not known). `stock`: warehouse_id, sku, on_hand.
    `existing`: the current active locks (channel, platform_order_no, sku, warehouse_id,
    state). Returns PLAN_COLUMNS, one row per (channel, platform_order_no, sku)."""
    if lines.empty:
        return _empty_plan()
    df = lines.reindex(columns=[*KEY, "qty", "paid_at", "wms_warehouse", "routed_warehouse"]).copy()
    df["qty"] = pd.to_numeric(df["qty"], errors="coerce").fillna(0)
    df = df[(df["qty"] > 0) & df["sku"].notna()]
    if df.empty:
        return _empty_plan()
    df["paid_at"] = pd.to_datetime(df["paid_at"], utc=True)
    # one row per order and SKU (a SKU on two lines of one order is one lock)
    df = df.groupby(KEY, as_index=False, sort=False).agg(
        qty=("qty", "sum"),
        paid_at=("paid_at", "min"),
        wms_warehouse=("wms_warehouse", "first"),
        routed_warehouse=("routed_warehouse", "first"),
    )
    if existing is not None and len(existing):
        held = existing[existing["state"].isin(ACTIVE_STATES)]
        held = held.sort_values("state").drop_duplicates(KEY)  # 'locked' before 'oversold'
        held = held[[*KEY, "warehouse_id", "state"]].rename(
            columns={"warehouse_id": "held_warehouse", "state": "held_state"}
        )
        df = df.merge(held, on=KEY, how="left")
    else:
        df["held_warehouse"] = None
        df["held_state"] = None
    on_hand = _stock_on_hand(stock)
    best = (
        on_hand[on_hand["on_hand"] > 0]
        .sort_values(["sku", "on_hand", "warehouse_id"], ascending=[True, False, True])
        .drop_duplicates("sku")[["sku", "warehouse_id"]]
        .rename(columns={"warehouse_id": "best_warehouse"})
    )
    df = df.merge(best, on="sku", how="left")

    df["warehouse_id"] = None
    df["basis"] = None
    for column, basis in (
        ("wms_warehouse", "wms"),
        ("routed_warehouse", "routing"),
        ("held_warehouse", "held"),
        ("best_warehouse", "provisional"),
    ):
        take = df["warehouse_id"].isna() & df[column].notna()
        df.loc[take, "warehouse_id"] = df.loc[take, column]
        df.loc[take, "basis"] = basis
    missing = df["warehouse_id"].isna()
    df.loc[missing, "warehouse_id"] = NO_WAREHOUSE
    df.loc[missing, "basis"] = "unstocked"

    df = df.merge(on_hand, on=["warehouse_id", "sku"], how="left")
    df["on_hand"] = df["on_hand"].fillna(0)
    # a promise already kept at this warehouse goes first, then first paid, first served
    df["rank"] = ~((df["held_state"] == LOCKED) & (df["held_warehouse"] == df["warehouse_id"]))
    df = df.sort_values(
        ["warehouse_id", "sku", "rank", "paid_at", "channel", "platform_order_no"],
        na_position="last",
        kind="stable",
    )
    running = df.groupby(["warehouse_id", "sku"], sort=False)["qty"].cumsum()
    df["state"] = (running <= df["on_hand"]).map({True: LOCKED, False: OVERSOLD})
    df["qty"] = df["qty"].round().astype(int)
    return df[list(PLAN_COLUMNS)].reset_index(drop=True)


def changed_locks(plan: pd.DataFrame, existing: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of `plan` that differ from the active lock of their line at their warehouse
    (quantity, state, basis or payment time), or that have none there (new, moved, or a
    released lock taken again). The rest would be rewritten as they are: at 1,000,000 orders a
    pass plans 261,000 open lines and a few thousand of them change.

    `existing`: channel, platform_order_no, sku, warehouse_id, qty, state, basis, paid_at."""
    if existing is None or existing.empty or plan.empty:
        return plan
    on = [*KEY, "warehouse_id"]
    compared = ["qty", "state", "basis", "paid_at"]
    held = existing[existing["state"].isin(ACTIVE_STATES)].reindex(columns=on + compared)
    held = held.drop_duplicates(on).rename(columns={c: f"{c}_held" for c in compared})
    both = plan.reset_index(drop=True).merge(held, on=on, how="left", sort=False)
    same = both["state_held"].notna()
    same &= pd.to_numeric(both["qty"]).eq(pd.to_numeric(both["qty_held"]))
    for column in ("state", "basis"):
        same &= both[column].astype(object).eq(both[f"{column}_held"].astype(object))
    paid, paid_held = (pd.to_datetime(both[c], utc=True) for c in ("paid_at", "paid_at_held"))
    same &= paid.eq(paid_held) | (paid.isna() & paid_held.isna())
    return plan.reset_index(drop=True)[~same.to_numpy()].reset_index(drop=True)


def plan_releases(
    existing: pd.DataFrame, plan: pd.DataFrame, reasons: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The active locks no open line holds any more, each with its release reason.

    `existing`: channel, platform_order_no, sku, warehouse_id, state. `reasons`: channel,
    platform_order_no, release_reason (cancelled, refunded, shipped, hold_expired,
    intercepted); an order without one released a line it no longer has (`line_removed`).
    A lock that moved warehouse is not released: it is replaced by the plan's row."""
    cols = ["channel", "platform_order_no", "sku", "warehouse_id", "release_reason"]
    if existing.empty:
        return pd.DataFrame(columns=cols)
    active = existing[existing["state"].isin(ACTIVE_STATES)]
    gone = active.merge(plan[KEY].drop_duplicates(), on=KEY, how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"].drop(columns="_merge")
    if reasons is not None and len(reasons):
        gone = gone.merge(
            reasons[["channel", "platform_order_no", "release_reason"]].drop_duplicates(
                ["channel", "platform_order_no"]
            ),
            on=["channel", "platform_order_no"],
            how="left",
        )
    else:
        gone["release_reason"] = None
    gone["release_reason"] = gone["release_reason"].fillna("line_removed")
    return gone[cols].reset_index(drop=True)


def available_after_locks(stock: pd.DataFrame, locks: pd.DataFrame) -> pd.DataFrame:
    """warehouse_id, sku, on_hand, locked, available (on_hand - locked units)."""
    on_hand = _stock_on_hand(stock)
    held = locks[locks["state"] == LOCKED] if len(locks) else locks
    if len(held):
        held = held.astype({"warehouse_id": object, "sku": object})
        locked = held.groupby(["warehouse_id", "sku"], as_index=False)["qty"].sum()
        locked = locked.rename(columns={"qty": "locked"})
    else:
        locked = pd.DataFrame(
            {
                "warehouse_id": pd.Series(dtype=object),
                "sku": pd.Series(dtype=object),
                "locked": pd.Series(dtype=float),
            }
        )
    out = on_hand.merge(locked, on=["warehouse_id", "sku"], how="outer")
    out[["on_hand", "locked"]] = out[["on_hand", "locked"]].fillna(0)
    out["available"] = out["on_hand"] - out["locked"]
    return out


def pause_sale_list(
    stock: pd.DataFrame, locks: pd.DataFrame, default_threshold: int, overrides: dict[str, int]
) -> pd.DataFrame:
    """SKUs whose sellable stock over all warehouses is under their threshold.

    Sellable = sum over warehouses of max(on_hand - locked, 0): what the platforms may still
    sell. `overrides`: per-SKU thresholds (else `default_threshold`). A SKU some open order
    locks or waits for but no warehouse holds has 0 sellable. Returns PAUSE_COLUMNS."""
    avail = available_after_locks(stock, locks)
    skus = set(avail["sku"])
    if len(locks):
        skus |= set(locks.loc[locks["state"].isin(ACTIVE_STATES), "sku"].dropna())
    if not skus:
        return pd.DataFrame(columns=list(PAUSE_COLUMNS))
    sellable = (
        avail.assign(sellable=avail["available"].clip(lower=0))
        .groupby("sku")["sellable"]
        .sum()
        .reindex(sorted(skus), fill_value=0)
    )
    frame = sellable.rename_axis("sku").reset_index()
    frame["threshold"] = frame["sku"].map(overrides).fillna(default_threshold).astype(int)
    frame["sellable"] = frame["sellable"].round().astype(int)
    frame = frame[frame["sellable"] < frame["threshold"]].copy()
    frame["reason"] = (
        "sellable stock "
        + frame["sellable"].astype(str)
        + " under the safety threshold "
        + frame["threshold"].astype(str)
    )
    return frame[list(PAUSE_COLUMNS)].reset_index(drop=True)
