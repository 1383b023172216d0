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
    everything below staging. Never runs twice at once; each dbt op still builds one at a time
    (pools `dbt` and `dbt_marts`), and a dependency that lands after a run started marks the
    asset for the next one.
    """
    return (
        dg.AutomationCondition.eager()
        .without(~dg.AutomationCondition.any_deps_missing())
        .without(~dg.AutomationCondition.any_deps_in_progress())
    )


def left_to_the_decision_worker() -> dg.AutomationCondition:
    """For the decisions and the stored models they read while `orderpulse up`'s decision
    worker runs them on every load: the automation builds them only when missing or when
    their code changed, not again after each load (it built them a second time beside each
    pass, holding the one `dbt` slot the passes wait for)."""
    return _missing_or_code_changed().with_label("left to the decision worker")


def built_when_its_code_changes() -> dg.AutomationCondition:
    """For the dbt views the automation does not rebuild on every load: a view reads its
    inputs live, so rebuilding it after a load (31 staging views with their data tests, 21-65 s
    per load on a 2-core host) changed no row and held the one `dbt` slot the decisions and
    the marts wait for. Built when missing or when its SQL changed; its data tests run then
    and in the nightly `dbt_full_data_tests` job. What reads a view follows the view's inputs
    (`updated_through_views`)."""
    return _missing_or_code_changed().with_label("a view: built when its code changes")


def _missing_or_code_changed() -> dg.AutomationCondition:
    """Built when newly missing or when its code version changed, never twice at once."""
    trigger = dg.AutomationCondition.newly_missing() | dg.AutomationCondition.code_version_changed()
    since = trigger.since_last_handled().with_label("missing or code changed")
    return since & ~dg.AutomationCondition.in_progress()


def updated_through_views(views: dg.AssetSelection, depth: int) -> dg.AutomationCondition:
    """`any_deps_updated()` that also looks through `views`: true when a dependency updated,
    or a dependency in `views` has a dependency that updated, and so on up to `depth` views
    deep (the longest chain of views). Replaces `any_deps_updated` in `keep_current()` for
    the assets that read the views `built_when_its_code_changes()` leaves alone."""
    updated = (
        dg.AutomationCondition.newly_updated() & ~dg.AutomationCondition.executed_with_root_target()
    ) | dg.AutomationCondition.will_be_requested()
    condition: dg.AutomationCondition = dg.AutomationCondition.any_deps_match(updated)
    for _ in range(depth):
        through = dg.AutomationCondition.any_deps_match(condition).allow(views)
        condition = dg.AutomationCondition.any_deps_match(updated) | through
    return condition.with_label("any_deps_updated (through views)")
