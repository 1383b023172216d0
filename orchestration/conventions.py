"""What every OrderPulse asset shares: owners, the schedules' time zone and how assets keep
themselves current under declarative automation."""

from __future__ import annotations

import dagster as dg

from kernel.timezones import BUSINESS_TIMEZONE

OWNERS = ["team:data-engineering"]
SCHEDULE_TIMEZONE = BUSINESS_TIMEZONE
# Every scheduled pull (and the hourly volume checks) carries this tag: dagster.yaml lets at
# most two such runs hold the run queue's slots at once, so the ten pulls due at the same
# minute do not keep the automation (dbt, decisions) waiting behind them.
SCHEDULED_PULL_TAGS = {"trigger": "schedule"}
# Queued runs start by priority: push runs first (10), then automation (5), then the rest.
AUTOMATION_RUN_TAGS = {"dagster/priority": "5"}


def keep_current() -> dg.AutomationCondition:
    """`eager()` without its "no dependency may be missing" and "no dependency in progress"
    clauses.

    A dependency that was never materialised (a channel not loaded yet, a decision table no
    asset writes yet) must not freeze everything downstream: on a fresh home `eager()` never
    fires at all. And in live mode some channel's staging is nearly always queued or running
    (pushes and schedules keep arriving), so waiting for no dependency in progress starved
    everything below staging. Never runs twice at once; dbt ops still run one at a time (pool
    `dbt`), and a dependency that lands after a run started marks the asset for the next one.
    """
    return (
        dg.AutomationCondition.eager()
        .without(~dg.AutomationCondition.any_deps_missing())
        .without(~dg.AutomationCondition.any_deps_in_progress())
    )
