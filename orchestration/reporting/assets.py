"""Reporting assets downstream of the marts."""

import dagster as dg
import pandas as pd

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
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


@dg.asset(
    key=["reporting", "channel_order_summary"],
    group_name="reporting",
    owners=OWNERS,
    kinds={"python", "pandas"},
    deps=[dg.AssetKey(["marts", "fct_orders"])],
    description="Orders, paid orders, goods value and paid amount per channel (marts.fct_orders).",
    code_version=source_version(__name__),
    automation_condition=keep_current(),
)
def channel_order_summary(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as conn:
        summary = read_channel_summary(conn)
    return dg.MaterializeResult(
        metadata={
            "orders": dg.MetadataValue.int(int(summary["orders"].sum()) if len(summary) else 0),
            "channels": dg.MetadataValue.int(len(summary)),
            "preview": dg.MetadataValue.md(summary.to_markdown(index=False)),
        }
    )
