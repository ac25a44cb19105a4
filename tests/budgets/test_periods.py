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
