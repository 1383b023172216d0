"""Freshness policies of the channel assets, derived from each channel's cadence in
config/channels.yaml: the UI shows a channel as late (warn) or stale (fail) when its pulls stop."""

from __future__ import annotations

import functools
import itertools
from datetime import date, timedelta

import dagster as dg

from connectors.channels_config import ChannelConfig

# A pull may be skipped once (run queue busy, platform throttling): warn after two intervals
# without a materialisation, fail after three.
WARN_INTERVALS = 2
FAIL_INTERVALS = 3
# SFTP exports and POS drops are one file a day (order_YYYYMMDD.csv); their sensors start a
# run only when a file lands, so their cadence is a day, whatever the schedule default says.
FILE_CADENCE = timedelta(days=1)

_FIELDS = (  # (lowest, highest) of minute, hour, day of month, month, day of week
    (0, 59),
    (0, 23),
    (1, 31),
    (1, 12),
    (0, 7),
)


def _field_values(text: str, lowest: int, highest: int) -> set[int]:
    """The values one cron field matches: `*`, `a`, `a-b`, each optionally `/step`, comma lists."""
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            start, end = lowest, highest
        elif "-" in rng:
            start, end = (int(v) for v in rng.split("-", 1))
        else:
            start = int(rng)
            end = highest if step else start
        if not lowest <= start <= end <= highest:
            raise ValueError(f"cron field {text!r} is out of range {lowest}-{highest}")
        values.update(range(start, end + 1, int(step) if step else 1))
    return values


@functools.lru_cache(maxsize=64)
def cron_longest_gap(cron: str) -> timedelta:
    """The longest time between two consecutive ticks of a 5-field cron (numeric fields).

    Every run day has the same times of day, so the longest gap is either one within a day or
    the one from a run day's last tick to the next run day's first; run days are found over
    eight years (two leap days), in the schedules' zone (Asia/Shanghai has no DST)."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"{cron!r} is not a 5-field cron (minute hour day month weekday)")
    minutes, hours, dom, months, dow = (
        _field_values(f, lo, hi) for f, (lo, hi) in zip(fields, _FIELDS, strict=True)
    )
    dow = {d % 7 for d in dow}  # 7 is Sunday too
    times = sorted(h * 60 + m for h in hours for m in minutes)
    start = date(2027, 1, 4)
    run_days = []
    for offset in range(8 * 366):
        day = start + timedelta(days=offset)
        on_dom, on_dow = day.day in dom, day.isoweekday() % 7 in dow
        # cron: when both day fields are restricted, a day matching either one runs
        both = fields[2] != "*" and fields[4] != "*"
        if day.month in months and ((on_dom or on_dow) if both else (on_dom and on_dow)):
            run_days.append(offset)
    if len(run_days) * len(times) < 2:
        raise ValueError(f"{cron!r} fires less than twice in eight years")
    within = max((b - a for a, b in itertools.pairwise(times)), default=0)
    day_span = times[-1] - times[0]
    across = max(((b - a) * 1440 - day_span for a, b in itertools.pairwise(run_days)), default=0)
    return timedelta(minutes=max(within, across))


def channel_cadence(cfg: ChannelConfig) -> timedelta:
    """How often a channel's asset should materialise: its schedule, or a day for files."""
    if cfg.kind in ("sftp", "file_drop"):
        return FILE_CADENCE
    return cron_longest_gap(cfg.schedule or "*/10 * * * *")


def channel_freshness_policy(cfg: ChannelConfig) -> dg.FreshnessPolicy:
    cadence = channel_cadence(cfg)
    return dg.FreshnessPolicy.time_window(
        fail_window=cadence * FAIL_INTERVALS, warn_window=cadence * WARN_INTERVALS
    )
