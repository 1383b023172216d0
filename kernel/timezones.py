"""The merchant's business time zone: schedules, daily partitions and "night" rules use it."""

from __future__ import annotations

from datetime import timedelta, timezone

BUSINESS_TIMEZONE = "Asia/Shanghai"
# a fixed offset: China has had no daylight saving time since 1991
BEIJING = timezone(timedelta(hours=8), BUSINESS_TIMEZONE)
