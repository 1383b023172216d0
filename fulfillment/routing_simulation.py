"""Try a routing rule change on history before switching it on (`orderpulse rules simulate`).

`simulate(...)` routes the same orders with the current and the proposed rules and reports how
many decisions change, by rule (from -> to), with the change in estimated freight cost and in
promised delivery days. Pure: nothing is written; printing is the CLI's job.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from fulfillment.promise import LaneTable
from fulfillment.routing import RoutingResult, route
from fulfillment.routing_rules import RoutingRules

_KEY = ["channel", "platform_order_no"]


@dataclass(frozen=True)
class SimulationReport:
    """What a proposed rule file would change on the same orders.

    - orders / changed: orders routed, and those whose decision, warehouse or carrier differ.
    - by_rule: rule_from, rule_to, orders, freight_delta (yuan, summed), promise_days_delta
      (mean over the orders shipped under both), one row per (from, to) pair that changed,
      most orders first.
    - by_decision: decision_from, decision_to, orders (every pair, changed or not).
    - freight_cost_current / _proposed: estimated carrier cost summed over shipped orders;
      promise_days_current / _proposed: mean promised days over shipped orders.
    - examples: up to 10 changed orders (key, from/to decision, warehouse, carrier, rule).
    - current / proposed: the two full routing results, for drill-down.
    """

    orders: int
    changed: int
    by_rule: pd.DataFrame
    by_decision: pd.DataFrame
    freight_cost_current: float
    freight_cost_proposed: float
    promise_days_current: float
    promise_days_proposed: float
    examples: pd.DataFrame
    current_version: str
    proposed_version: str
    current: RoutingResult
    proposed: RoutingResult

    @property
    def freight_cost_delta(self) -> float:
        return self.freight_cost_proposed - self.freight_cost_current

    @property
    def promise_days_delta(self) -> float:
        return self.promise_days_proposed - self.promise_days_current

    def summary(self) -> dict:
        """Plain numbers for printing or JSON."""
        return {
            "orders": self.orders,
            "changed": self.changed,
            "current_version": self.current_version,
            "proposed_version": self.proposed_version,
            "freight_cost_current": round(self.freight_cost_current, 2),
            "freight_cost_proposed": round(self.freight_cost_proposed, 2),
            "freight_cost_delta": round(self.freight_cost_delta, 2),
            "promise_days_current": round(self.promise_days_current, 3),
            "promise_days_proposed": round(self.promise_days_proposed, 3),
            "promise_days_delta": round(self.promise_days_delta, 3),
            "by_rule": self.by_rule.to_dict("records"),
        }


def _shipped_mean(values: pd.Series, decisions: pd.Series) -> float:
    shipped = decisions.astype(str).isin(["ship", "split"]).to_numpy()
    v = values.to_numpy(dtype=float)[shipped]
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else float("nan")


def simulate(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    stock: pd.DataFrame,
    health: pd.DataFrame,
    current_rules: RoutingRules,
    proposed_rules: RoutingRules,
    now: datetime,
    *,
    capacity_used: Mapping[str, int] | None = None,
    hot_skus: Collection[str] | None = None,
    lanes: LaneTable | None = None,
    backlog: Mapping[str, int] | None = None,
    capacity_per_paid_day: bool = True,
) -> SimulationReport:
    """Route `orders` with both rule sets (inputs as for `fulfillment.routing.route`) and
    compare. Capacity counts per paid day by default, since a replay spans several days."""
    kwargs = {
        "capacity_used": capacity_used,
        "hot_skus": hot_skus,
        "lanes": lanes,
        "backlog": backlog,
        "capacity_per_paid_day": capacity_per_paid_day,
        "explain": False,
    }
    cur = route(orders, lines, stock, health, current_rules, now, **kwargs)
    new = route(orders, lines, stock, health, proposed_rules, now, **kwargs)
    cols = _KEY + ["decision", "warehouse_id", "carrier", "rule", "freight_cost", "promise_days"]
    a = cur.decisions[cols].copy()
    b = new.decisions[cols].copy()
    for frame in (a, b):
        for c in ("decision", "warehouse_id", "carrier", "rule"):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), "")
    both = a.merge(b, on=_KEY, suffixes=("_from", "_to"), how="inner", validate="one_to_one")

    changed = (
        (both["decision_from"] != both["decision_to"])
        | (both["warehouse_id_from"] != both["warehouse_id_to"])
        | (both["carrier_from"] != both["carrier_to"])
    )
    diff = both[changed].copy()
    diff["freight_delta"] = diff["freight_cost_to"].fillna(0) - diff["freight_cost_from"].fillna(0)
    diff["promise_days_delta"] = diff["promise_days_to"] - diff["promise_days_from"]
    by_rule = (
        diff.groupby(["rule_from", "rule_to"], sort=True)
        .agg(
            orders=("channel", "size"),
            freight_delta=("freight_delta", "sum"),
            promise_days_delta=("promise_days_delta", "mean"),
        )
        .reset_index()
        .sort_values(["orders", "rule_from", "rule_to"], ascending=[False, True, True])
        .reset_index(drop=True)
    )
    by_decision = (
        both.groupby(["decision_from", "decision_to"], sort=True)
        .size()
        .rename("orders")
        .reset_index()
    )
    examples = diff[
        _KEY
        + [
            "decision_from",
            "decision_to",
            "warehouse_id_from",
            "warehouse_id_to",
            "carrier_from",
            "carrier_to",
            "rule_from",
            "rule_to",
        ]
    ].head(10)

    def total_freight(d: pd.DataFrame) -> float:
        return float(np.nansum(d["freight_cost"].to_numpy(dtype=float)))

    return SimulationReport(
        orders=len(both),
        changed=int(changed.sum()),
        by_rule=by_rule,
        by_decision=by_decision,
        freight_cost_current=total_freight(cur.decisions),
        freight_cost_proposed=total_freight(new.decisions),
        promise_days_current=_shipped_mean(
            cur.decisions["promise_days"], cur.decisions["decision"]
        ),
        promise_days_proposed=_shipped_mean(
            new.decisions["promise_days"], new.decisions["decision"]
        ),
        examples=examples.reset_index(drop=True),
        current_version=current_rules.version,
        proposed_version=proposed_rules.version,
        current=cur,
        proposed=new,
    )
