"""Receiver addresses placed with cpca: between the two dbt ops (reads int_orders, dbt reads
raw.address_geo after it)."""

import dagster as dg

from orchestration.code_versions import source_version
from orchestration.conventions import OWNERS, keep_current
from orchestration.resources import WarehouseResource


@dg.asset(
    key=["raw", "address_geo"],
    group_name="enrichment",
    owners=OWNERS,
    kinds={"python", "pandas", "postgres"},
    deps=[dg.AssetKey(["intermediate", "int_orders"])],
    description=(
        "Receiver addresses of intermediate.int_orders placed by cpca (province, city, "
        "district, adcode, coordinates), cached by address hash; unparseable ones flagged "
        "is_parsed = false. Read by dbt as source raw.address_geo."
    ),
    code_version=source_version(__name__, "fulfillment.address_geo"),
    automation_condition=keep_current(),
)
def address_geo(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from fulfillment.address_geo import enrich_addresses

    with warehouse.connect() as conn:
        report = enrich_addresses(conn)
        total, unparsed = conn.execute(
            "select count(*), count(*) filter (where not is_parsed) from raw.address_geo"
        ).fetchone()
    return dg.MaterializeResult(
        metadata={
            **report.as_metadata(),
            "dagster/row_count": dg.MetadataValue.int(total),
            "unparsed_in_table": dg.MetadataValue.int(unparsed),
        }
    )
