"""dagster.yaml keeps run, event and schedule storage in the warehouse's PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import psycopg

from kernel import runtime
from kernel.settings import Settings


@dg.asset
def tiny_asset() -> int:
    return 1


def test_runs_are_recorded_in_postgres(pg, op_home: Path) -> None:
    saved = dict(os.environ)
    try:
        settings = Settings(home=op_home, pg_url=os.environ.get("ORDERPULSE_TEST_PG_URL"))
        runtime.prepare(settings)
        yaml_text = (settings.dagster_home / "dagster.yaml").read_text()
        assert "ORDERPULSE_DAGSTER_PG_URL" in yaml_text and pg.password not in yaml_text
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        # a run failed outside its steps (e.g. dequeued while the code server was busy) is
        # launched again once, a failed step is not; the code server gets 180 s to answer
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] == "180"
        result = dg.materialize([tiny_asset], instance=instance)
        assert result.success
        with psycopg.connect(os.environ["ORDERPULSE_DAGSTER_PG_URL"].replace("+psycopg2", "")) as c:
            found = c.execute("select count(*) from runs where run_id = %s", [result.run_id])
            assert found.fetchone()[0] == 1
        instance.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
