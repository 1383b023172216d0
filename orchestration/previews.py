"""How numbers and rows read in the Dagster UI: money as yuan with two decimals and thousands
separators, a few rows as a Markdown table, a trend as a text sparkline.

Text, not images: a Markdown table costs nothing to render, where a matplotlib PNG costs a
second or more per run (import and draw, measured on the 2-core host) and ~100 KB of event log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal

import pandas as pd

# amounts in yuan in marts and reports (numeric, never fen)
MONEY_COLUMNS = frozenset(
    {
        "goods_value",
        "discount_amount",
        "platform_discount",
        "shop_discount",
        "freight",
        "paid_amount",
        "after_sale_cost",
        "buyer_paid_amount",
        "declared_value",
    }
)
_BARS = "▁▂▃▄▅▆▇█"


def yuan(value: Decimal | float | int | None) -> str:
    """`¥1,016,900.00`; empty for a missing amount."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"¥{Decimal(str(value)):,.2f}"


def markdown_rows(frame: pd.DataFrame, money: Iterable[str] = MONEY_COLUMNS) -> str:
    """`frame` as a Markdown table, money columns as yuan (right-aligned, as text)."""
    shown = frame.copy()
    for column in shown.columns.intersection(list(money)):
        shown[column] = shown[column].map(yuan)
    if shown.empty:
        return "_no rows_"
    return shown.to_markdown(index=False, disable_numparse=True)


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, scaled from 0 to the largest (a flat zero line is ▁)."""
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(
        _BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))] for v in values
    )
