"""Prepare a process to run OrderPulse: the warehouse, env for Dagster and dbt, dagster.yaml."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg

from kernel.database import EmbeddedServer, PgConn, ensure_database
from kernel.settings import Settings, get_settings

DAGSTER_YAML = """\
# Written by `orderpulse`: Dagster's run, event-log and schedule storage in PostgreSQL.
# The URL comes from the environment, so no password is stored here. dagster-postgres's own
# storage on pooled connections (orchestration/instance_storage.py): it opens one per call.
storage:
  custom:
    module: orchestration.instance_storage
    class: PooledPostgresStorage
    config:
      postgres_url:
        env: ORDERPULSE_DAGSTER_PG_URL
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
    # a push run should start within a second of its sensor tick (default: every 5 s)
    dequeue_interval_seconds: 1
    # scheduled pulls (tag set by the schedules) may hold two of the four slots: the ten
    # channels due at the same minute must not keep dbt and the decisions waiting
    tag_concurrency_limits:
      - key: trigger
        value: schedule
        limit: 2
# evaluate sensors side by side: a push sensor must not wait behind the SFTP listing
sensors:
  use_threads: true
  num_workers: 4
# a run whose process died (Ctrl-C during a run, a crash) is marked failed instead of holding
# a concurrency slot as "started" for ever
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  poll_interval_seconds: 30
# a run that failed outside its steps (the code server too busy to answer the run queue
# within its time-out, a run worker that died) is launched again once; a failed step is not
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: false
telemetry:
  enabled: false
"""


def dagster_storage(settings: Settings, warehouse: PgConn) -> PgConn:
    """Dagster's own storage: database `dagster` beside the warehouse on the embedded server,
    or the warehouse database itself on an external server (one URL to manage)."""
    if settings.pg_url:
        return warehouse
    admin = EmbeddedServer(settings.pgdata).conn("postgres")
    with psycopg.connect(admin.url(), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = 'dagster'").fetchone():
            conn.execute("create database dagster")
    return admin.__class__(admin.host, admin.port, admin.user, admin.password, "dagster")


def prepare(settings: Settings | None = None) -> PgConn:
    """Start/reach the warehouse and export everything Dagster, dbt and the connectors read.

    ORDERPULSE_WAREHOUSE_URL is the resolved warehouse URL (embedded or external); it is kept
    apart from ORDERPULSE_PG_URL, which only ever means "use this external server"."""
    settings = settings or get_settings()
    warehouse = ensure_database(settings)
    home = settings.home_dir
    dagster_home = settings.dagster_home
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    storage = dagster_storage(settings, warehouse)
    os.environ.update(
        {
            "ORDERPULSE_HOME": str(home),
            "ORDERPULSE_WAREHOUSE_URL": warehouse.url(),
            "ORDERPULSE_DAGSTER_PG_URL": storage.url(driver="psycopg2"),
            "DAGSTER_HOME": str(dagster_home),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "GX_ANALYTICS_ENABLED": "false",
            # the one code server answers every sensor, schedule and run-queue call: on a busy
            # machine its default 60 s time-out failed queued runs while it was evaluating
            "DAGSTER_GRPC_TIMEOUT_SECONDS": os.environ.get("DAGSTER_GRPC_TIMEOUT_SECONDS", "180"),
            # dagster-dbt and `dagster dev` run the `dbt` / `dagster` of the PATH: this venv's
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            **warehouse.env(),
        }
    )
    return warehouse


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
