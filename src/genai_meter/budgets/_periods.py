"""Calendar periods as Unix-time intervals, computed in a time zone.

A budget's period is computed once and then compared as two floats per call until it rolls over:
datetime arithmetic with a time zone costs microseconds, a float compare costs nanoseconds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

# `minute` and `hour` exist for request-rate limits; spend budgets use day, week or month.
PERIODS = ("minute", "hour", "day", "week", "month")


def _local_midnight(day: date, tz: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def period_bounds(period: str, tz: tzinfo, now: float) -> tuple[float, float]:
    """The [start, end) of the period containing `now`, as Unix times.

    Days, weeks (ISO, Monday first) and months start at local midnight in `tz`, so a day can last
    23 or 25 hours across a daylight-saving change.
    """
    if period == "minute":
        start = now - now % 60.0
        return start, start + 60.0
    local = datetime.fromtimestamp(now, tz)
    if period == "hour":
        begin = local.replace(minute=0, second=0, microsecond=0).timestamp()
        return begin, begin + 3600.0
    today = local.date()
    if period == "day":
        first, following = today, today + timedelta(days=1)
    elif period == "week":
        first = today - timedelta(days=today.weekday())
        following = first + timedelta(days=7)
    elif period == "month":
        first = today.replace(day=1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    start, end = _local_midnight(first, tz), _local_midnight(following, tz)
    # A midnight that does not exist (DST gap at 00:00) can map past `now`; keep now inside.
    return min(start, now), max(end, now + 1e-6)
