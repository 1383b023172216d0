"""What every OrderPulse asset shares: owners, the schedules' time zone and how assets keep
themselves current under declarative automation."""

from __future__ import annotations

import dagster as dg

from kernel.timezones import BUSINESS_TIMEZONE

OWNERS = ["team:data-engineering"]
SCHEDULE_TIMEZONE = BUSINESS_TIMEZONE


def keep_current() -> dg.AutomationCondition:
    """`eager()` without its "no dependency may be missing" clause.

    A dependency that was never materialised (a channel not loaded yet, a decision table no
    asset writes yet) must not freeze everything downstream: on a fresh home `eager()` never
    fires at all. Still waits for dependencies in progress and never runs twice at once.
    """
    return dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
