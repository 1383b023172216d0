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


# Orders per hour of each channel over the last 24 hours of the data (its newest order, so a
# replayed or sandbox world shows its own day), hours in Beijing time, empty hours as zero.
ORDERS_PER_HOUR_SQL = """
with clock as (
    select date_trunc('hour', max(created_at), 'Asia/Shanghai') as last_hour
    from marts.fct_orders
),

hours as (
    select generate_series(last_hour - interval '23 hours', last_hour, interval '1 hour') as hour
    from clock
),

counts as (
    select fct_orders.channel,
           date_trunc('hour', fct_orders.created_at, 'Asia/Shanghai') as hour,
           count(*) as orders
    from marts.fct_orders
    cross join clock
    where fct_orders.created_at >= clock.last_hour - interval '23 hours'
    group by 1, 2
),

channels as (
    select distinct channel from counts
)

select channels.channel, hours.hour, coalesce(counts.orders, 0) as orders
from channels
cross join hours
left join counts on counts.channel = channels.channel and counts.hour = hours.hour
order by channels.channel, hours.hour
"""


def orders_per_hour_chart(conn) -> str:
    """Markdown: per channel a sparkline of its orders in each of the last 24 hours, the total
    and the busiest hour (Beijing time)."""
    hourly = _frame(conn, ORDERS_PER_HOUR_SQL)
    if hourly.empty:
        return "_no orders yet_"
    rows = []
    for channel, group in hourly.groupby("channel", sort=True):
        busiest = group.loc[group["orders"].idxmax()]
        rows.append(
            {
                "channel": channel,
                "orders per hour (24 h)": sparkline(group["orders"].astype(float).tolist()),
                "orders": int(group["orders"].sum()),
                "busiest hour": f"{busiest['hour'].astimezone(BEIJING):%m-%d %H:00} "
                f"({int(busiest['orders'])})",
            }
        )
    last = hourly["hour"].max().astimezone(BEIJING)
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    return f"{table}\n\n24 hours ending {last:%Y-%m-%d %H:59} Beijing time."


def _frame(conn, sql: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


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
        summary = read_channel_summary(conn)
        chart = orders_per_hour_chart(conn)
    return dg.MaterializeResult(
        metadata={
            "orders": dg.MetadataValue.int(int(summary["orders"].sum()) if len(summary) else 0),
            "channels": dg.MetadataValue.int(len(summary)),
            "paid_amount": dg.MetadataValue.text(yuan(summary["paid_amount"].sum())),
            "preview": dg.MetadataValue.md(markdown_rows(summary)),
            "orders_per_hour": dg.MetadataValue.md(chart),
        }
    )
