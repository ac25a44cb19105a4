"""Calendar periods on local boundaries, daylight-saving days included."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from genai_meter.budgets._periods import period_bounds

BERLIN = ZoneInfo("Europe/Berlin")


def _bounds(period: str, tz: ZoneInfo, moment: datetime) -> tuple[datetime, datetime]:
    start, end = period_bounds(period, tz, moment.timestamp())
    return datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)


@pytest.mark.parametrize(
    ("period", "moment", "start", "end"),
    [
        (
            "day",
            datetime(2025, 3, 12, 23, 30, tzinfo=BERLIN),
            datetime(2025, 3, 12, tzinfo=BERLIN),
            datetime(2025, 3, 13, tzinfo=BERLIN),
        ),
        (
            "week",
            datetime(2025, 3, 12, 10, tzinfo=BERLIN),
            datetime(2025, 3, 10, tzinfo=BERLIN),
            datetime(2025, 3, 17, tzinfo=BERLIN),
        ),
        (
            "week",
            datetime(2025, 3, 16, 23, 59, tzinfo=BERLIN),
            datetime(2025, 3, 10, tzinfo=BERLIN),
            datetime(2025, 3, 17, tzinfo=BERLIN),
        ),
        (
            "month",
            datetime(2025, 12, 31, 23, 59, tzinfo=BERLIN),
            datetime(2025, 12, 1, tzinfo=BERLIN),
            datetime(2026, 1, 1, tzinfo=BERLIN),
        ),
        (
            "month",
            datetime(2024, 2, 29, 12, tzinfo=BERLIN),
            datetime(2024, 2, 1, tzinfo=BERLIN),
            datetime(2024, 3, 1, tzinfo=BERLIN),
        ),
        (
            "hour",
            datetime(2025, 3, 12, 10, 59, 59, tzinfo=BERLIN),
            datetime(2025, 3, 12, 10, tzinfo=BERLIN),
            datetime(2025, 3, 12, 11, tzinfo=BERLIN),
        ),
    ],
)
def test_local_boundaries(period: str, moment: datetime, start: datetime, end: datetime) -> None:
    assert _bounds(period, BERLIN, moment) == (start, end)


def test_dst_days_are_23_and_25_hours() -> None:
    spring = period_bounds("day", BERLIN, datetime(2025, 3, 30, 12, tzinfo=BERLIN).timestamp())
    autumn = period_bounds("day", BERLIN, datetime(2025, 10, 26, 12, tzinfo=BERLIN).timestamp())
    assert spring[1] - spring[0] == 23 * 3600
    assert autumn[1] - autumn[0] == 25 * 3600


def test_time_zone_moves_the_boundary() -> None:
    # 23:30 UTC on 12 March is already 13 March in Berlin and still 12 March in New York.
    moment = datetime(2025, 3, 12, 23, 30, tzinfo=timezone.utc).timestamp()
    berlin = period_bounds("day", BERLIN, moment)
    new_york = period_bounds("day", ZoneInfo("America/New_York"), moment)
    assert datetime.fromtimestamp(berlin[0], timezone.utc) == datetime(2025, 3, 12, 23, tzinfo=timezone.utc)
    assert datetime.fromtimestamp(new_york[0], timezone.utc) == datetime(2025, 3, 12, 4, tzinfo=timezone.utc)


def test_half_hour_zone_hours_and_minutes() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    start, end = _bounds("hour", kolkata, datetime(2025, 3, 12, 10, 45, tzinfo=kolkata))
    assert (start, end) == (
        datetime(2025, 3, 12, 10, tzinfo=kolkata),
        datetime(2025, 3, 12, 11, tzinfo=kolkata),
    )
    assert period_bounds("minute", kolkata, 120.5) == (120.0, 180.0)



LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # daylight saving shifts by 30 minutes


def _utc(hour: int, minute: int, day: int = 1, month: int = 4) -> float:
    return datetime(2023, month, day, hour, minute, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        # 2 April 2023 local (1 April UTC): at 02:00+11:00 (15:00 UTC) the clock goes back to 01:30+10:30.
        (_utc(14, 10), _utc(14, 0), _utc(15, 0)),  # 01:10+11:00
        (_utc(14, 59), _utc(14, 0), _utc(15, 0)),  # 01:59+11:00
        (_utc(15, 0), _utc(14, 0), _utc(15, 30)),  # 01:30+10:30, the repeat: the same hour goes on
        (_utc(15, 29), _utc(14, 0), _utc(15, 30)),  # 01:59+10:30
        (_utc(15, 30), _utc(15, 30), _utc(16, 30)),  # 02:00+10:30
        # 1 October 2023 local (30 September UTC): at 02:00+10:30 (15:30 UTC) the clock jumps to 02:30+11:00.
        (_utc(15, 29, 30, 9), _utc(14, 30, 30, 9), _utc(15, 30, 30, 9)),  # 01:59+10:30
        (_utc(15, 30, 30, 9), _utc(15, 30, 30, 9), _utc(16, 0, 30, 9)),  # 02:30+11:00: a half hour
        (_utc(16, 0, 30, 9), _utc(16, 0, 30, 9), _utc(17, 0, 30, 9)),  # 03:00+11:00
    ],
)
def test_hours_across_a_half_hour_shift(now: float, start: float, end: float) -> None:
    assert period_bounds("hour", LORD_HOWE, now) == (start, end)


@pytest.mark.parametrize("tz", [LORD_HOWE, BERLIN, ZoneInfo("America/New_York")])
def test_hours_contain_now_and_follow_each_other(tz: ZoneInfo) -> None:
    # Three days from each: both Lord Howe shifts, Berlin's (26 March, 29 October), New York's (12 March,
    # 5 November).
    days = [(1, 4), (30, 9), (28, 10), (11, 3), (25, 3), (4, 11)]
    for begin in [_utc(0, 0, day, month) for day, month in days]:
        previous: tuple[float, float] | None = None
        for minute in range(0, 3 * 24 * 60, 5):
            now = begin + minute * 60
            start, end = period_bounds("hour", tz, now)
            assert start <= now < end and end - start <= 5400
            if previous is not None and previous != (start, end):
                assert start == previous[1] or (start == previous[0] and end > previous[1])
            previous = (start, end)
