"""Reporting assets downstream of the marts."""

import dagster as dg
import pandas as pd

from kernel.timezones import BEIJING
from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.previews import markdown_rows, sparkline, yuan
from orchestration.resources import WarehouseResource

SUMMARY_SQL = """
select channel,
       count(*)                                              as orders,
       count(*) filter (where paid_at is not null)           as paid_orders,
       coalesce(sum(goods_value), 0)::numeric(16, 2)         as goods_value,
       coalesce(sum(paid_amount), 0)::numeric(16, 2)         as paid_amount
from marts.fct_orders
group by channel
order by channel
"""


def read_channel_summary(conn) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(SUMMARY_SQL)
        cols = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)


# The summary and the hourly trend from one scan of fct_orders (no index on created_at). At
# 1,000,000 orders: the summary alone 0.34-0.39 s; with hourly groups by date_bin 0.50-0.58 s;
# by date_trunc(.., 'Asia/Shanghai') 0.77-0.87 s; a second scan for the trend 0.8-1.0 s more.
# Hours binned from a UTC origin are Beijing hours too (a whole-hour offset, no DST).
CHANNEL_HOURS_SQL = """
select channel,
       date_bin('1 hour', created_at, timestamptz '2000-01-01 00:00+00') as hour,
       count(*) as orders,
       count(*) filter (where paid_at is not null) as paid_orders,
       coalesce(sum(goods_value), 0)::numeric(16, 2) as goods_value,
       coalesce(sum(paid_amount), 0)::numeric(16, 2) as paid_amount
from marts.fct_orders
group by channel, hour
"""
SUMMARY_COLUMNS = ["orders", "paid_orders", "goods_value", "paid_amount"]
CHART_HOURS = 24


def read_channel_hours(conn) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(CHANNEL_HOURS_SQL)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def summary_of(channel_hours: pd.DataFrame) -> pd.DataFrame:
    """Per channel: orders, paid orders, goods value and paid amount (SUMMARY_SQL's frame)."""
    if channel_hours.empty:
        return pd.DataFrame(columns=["channel", *SUMMARY_COLUMNS])
    return channel_hours.groupby("channel", sort=True)[SUMMARY_COLUMNS].sum().reset_index()


def orders_per_hour_chart(channel_hours: pd.DataFrame) -> str:
    """Markdown: per channel a sparkline of its orders in each of the last 24 hours of the
    data (ending at the newest order's hour, so a replayed or sandbox world shows its own
    day), the total and the busiest hour, in Beijing time; empty hours count zero."""
    timed = channel_hours.dropna(subset=["hour"])
    if timed.empty:
        return "_no orders yet_"
    hours = pd.to_datetime(timed["hour"], utc=True)
    last = hours.max()
    window = pd.date_range(end=last, periods=CHART_HOURS, freq="h")
    counts = (
        timed.assign(hour=hours)
        .loc[hours >= window[0]]
        .pivot_table(index="channel", columns="hour", values="orders", aggfunc="sum")
        .reindex(columns=window, fill_value=0)
        .fillna(0)
        .astype(int)
    )
    table = pd.DataFrame(
        {
            "channel": counts.index,
            "orders per hour (24 h)": [sparkline(row.tolist()) for _, row in counts.iterrows()],
            "orders": counts.sum(axis=1).to_numpy(),
            "busiest hour": [
                f"{hour.astimezone(BEIJING):%m-%d %H:00} ({n})"
                for hour, n in zip(counts.idxmax(axis=1), counts.max(axis=1), strict=True)
            ],
        }
    ).to_markdown(index=False, disable_numparse=True)
    ending = last.astimezone(BEIJING)
    return f"{table}\n\n{CHART_HOURS} hours ending {ending:%Y-%m-%d %H:59} Beijing time."


@dg.asset(
    key=["reporting", "channel_order_summary"],
    group_name="reporting",
    owners=OWNERS,
    kinds={"python", "pandas"},
    deps=[dg.AssetKey(["marts", "fct_orders"])],
    description=(
        "Orders, paid orders, goods value and paid amount per channel (marts.fct_orders), "
        "and each channel's orders per hour over the last 24 hours."
    ),
    code_version=source_version(__name__, "orchestration.previews"),
    automation_condition=keep_current(),
)
def channel_order_summary(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as conn:
        channel_hours = read_channel_hours(conn)
    summary = summary_of(channel_hours)
    chart = orders_per_hour_chart(channel_hours)
    return dg.MaterializeResult(
        metadata={
            "orders": dg.MetadataValue.int(int(summary["orders"].sum()) if len(summary) else 0),
            "channels": dg.MetadataValue.int(len(summary)),
            "paid_amount": dg.MetadataValue.text(yuan(summary["paid_amount"].sum())),
            "preview": dg.MetadataValue.md(markdown_rows(summary)),
            "orders_per_hour": dg.MetadataValue.md(chart),
        }
    )
