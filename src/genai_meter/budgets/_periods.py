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
        return _hour(local, tz, now)
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


def _hour(local: datetime, tz: tzinfo, now: float) -> tuple[float, float]:
    """The local hour containing `now`: from its :00 (on the same pass, when the clock repeats) to
    the next local :00, and never longer than an hour from its start but where the clock went back.

    With a whole-hour shift every hour is 60 minutes, the repeated one twice. With a 30-minute
    shift (Australia/Lord_Howe) the hour the clock jumps into is 30 minutes, and the hour it goes
    back into lasts 90 minutes: its second half hour would otherwise start at a :00 that came an
    hour before `now` and end before `now`.
    """
    top = local.replace(minute=0, second=0, microsecond=0)
    begin = top.timestamp()
    following = (top.replace(tzinfo=None) + timedelta(hours=1)).replace(tzinfo=tz, fold=0).timestamp()
    end = min(begin + 3600.0, following)
    if end <= now:
        end = following
    return min(begin, now), max(end, now + 1e-6)
