"""Checking report, export, projection and reconciliation arguments, and turning them into SQL safely.

User values only ever become bound parameters; column names come from the fixed maps below, so a
group or filter name that is not in them is an error, never text pasted into SQL.
Times are UTC. `since` is inclusive, `until` exclusive. Accepted: YYYY-MM-DD, an ISO 8601 date-time
(naive means UTC), `today`, `yesterday`, `Nd` (midnight UTC N days ago), or a Unix time.
Every check raises QueryError naming the argument (or CLI option) and the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ._errors import QueryError

# Public name -> column. The only columns a report may group or filter by.
DIMENSIONS: dict[str, str] = {
    "user": "user_id",
    "tenant": "tenant",
    "feature": "feature",
    "model": "model",
    "provider": "provider",
    "operation": "operation",
    "outcome": "outcome",
    "request_model": "request_model",
    "service_tier": "service_tier",
}
PERIODS = ("day", "week", "month")
# A filter value meaning "not set" (the column is NULL); reports print NULL groups the same way.
NONE_VALUE = "(none)"

_RELATIVE_DAYS = re.compile(r"^(\d{1,5})d$")

TimeArg = str | date | datetime | float | int | None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: TimeArg, *, name: str, now: datetime | None = None) -> float | None:
    """A time argument as Unix seconds (None stays None); QueryError names the argument."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise QueryError(f"{name}: {value!r} is not a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc).timestamp()
    text = str(value).strip()
    today = (now or utc_now()).date()
    if text == "today":
        return parse_time(today, name=name)
    if text == "yesterday":
        return parse_time(today - timedelta(days=1), name=name)
    match = _RELATIVE_DAYS.match(text)
    if match:
        return parse_time(today - timedelta(days=int(match.group(1))), name=name)
    try:
        if len(text) == 10:
            return parse_time(date.fromisoformat(text), name=name)
        return parse_time(datetime.fromisoformat(text.replace("Z", "+00:00")), name=name)
    except ValueError:
        raise QueryError(
            f"{name}: {text!r} is not a date (YYYY-MM-DD, ISO date-time, today, yesterday or Nd)"
        ) from None


def day_of(ts: float) -> date:
    return datetime.fromtimestamp(ts, tz=timezone.utc).date()


def parse_day(value: TimeArg, *, name: str) -> date | None:
    """The UTC day of a time argument (None stays None); QueryError when it has no such day
    (before year 1 or after 9999 once moved to UTC)."""
    ts = parse_time(value, name=name)
    if ts is None:
        return None
    try:
        return day_of(ts)
    except (OverflowError, OSError, ValueError):
        raise QueryError(f"{name}: {value!r} is outside the UTC years 1 to 9999") from None


def non_negative_number(value: Any, name: str) -> float:
    """`value` as a float if it is a finite number >= 0, else QueryError naming `name`.

    NaN must not pass: every comparison with it is false, so a NaN threshold calls any difference
    a match, and a NaN budget is never reached.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(f"{name}: {value!r} is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise QueryError(f"{name}: {value!r} is not a finite number >= 0")
    return number


def whole_number(value: Any, name: str, *, low: int, high: int) -> int:
    """`value` if it is a whole number in [low, high], else QueryError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(f"{name}: {value!r} is not a whole number from {low} to {high}")
    return value


def day_start(day: date) -> float:
    return datetime.combine(day, time(), tzinfo=timezone.utc).timestamp()


@dataclass
class Where:
    """A WHERE clause being built: SQL text with placeholders, and the values bound to them."""

    placeholder: str
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> None:
        self.clauses.append(sql.replace("?", self.placeholder))
        self.params.extend(params)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def build_where(
    placeholder: str,
    *,
    since: TimeArg = None,
    until: TimeArg = None,
    filters: Mapping[str, str | Sequence[str] | None] | None = None,
    now: datetime | None = None,
) -> Where:
    where = Where(placeholder)
    start = parse_time(since, name="since", now=now)
    end = parse_time(until, name="until", now=now)
    if start is not None and end is not None and end <= start:
        raise QueryError(f"until ({until}) must be after since ({since})")
    if start is not None:
        where.add("ts >= ?", start)
    if end is not None:
        where.add("ts < ?", end)
    for name, value in (filters or {}).items():
        if value is None:
            continue
        column = dimension_column(name, what="filter")
        values = [value] if isinstance(value, str) else list(value)
        if not values:
            continue
        wanted = [v for v in values if v != NONE_VALUE]
        parts = []
        if wanted:
            marks = ", ".join("?" for _ in wanted)
            parts.append(f"{column} IN ({marks})")
        if len(wanted) != len(values):
            parts.append(f"{column} IS NULL")
        where.add("(" + " OR ".join(parts) + ")", *wanted)
    return where


def dimension_column(name: str, *, what: str = "group") -> str:
    try:
        return DIMENSIONS[name]
    except KeyError:
        raise QueryError(f"unknown {what} {name!r}; choose from {', '.join(DIMENSIONS)}") from None
