"""Month-end projection: where spend lands at the recent daily rate, and when each budget runs out.

The rate is the mean daily spend over the last `window_days` closed UTC days (today is partial and
would drag the rate down in the morning). Limits are monthly: a budget's remaining money is its
limit minus month-to-date spend, used up at that rate. A budget the rate does not use up by the end
of the month is "not reached" (no date): a monthly budget starts again before any later date.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ._errors import QueryError
from ._ledger import Filters, Ledger, usd_sum
from ._query import DIMENSIONS, NONE_VALUE, non_negative_number, utc_now, whole_number

DEFAULT_KEY = "*"
MAX_WINDOW_DAYS = 3660  # ten years: more is no "recent" rate, and far more is no calendar date

# Projection.budget_status values.
EXHAUSTED = "exhausted"  # spent >= limit; runs_out_on is the day it happened
RUNS_OUT = "runs_out"  # reached this month at the current rate, on runs_out_on
NOT_REACHED = "not_reached"  # not reached by the end of the month at the current rate


@dataclass(frozen=True)
class Projection:
    """One scope value: spend so far this month, recent daily rate, month-end estimate, budget."""

    scope: str
    value: str | None
    month_to_date_usd: float
    daily_rate_usd: float
    projected_month_end_usd: float
    limit_usd: float | None = None
    runs_out_on: date | None = None
    exhausted: bool = False

    @property
    def budget_status(self) -> str | None:
        if self.limit_usd is None:
            return None
        if self.exhausted:
            return EXHAUSTED
        return RUNS_OUT if self.runs_out_on is not None else NOT_REACHED

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "value": self.value,
            "month_to_date_usd": self.month_to_date_usd,
            "daily_rate_usd": self.daily_rate_usd,
            "projected_month_end_usd": self.projected_month_end_usd,
            "limit_usd": self.limit_usd,
            "runs_out_on": self.runs_out_on.isoformat() if self.runs_out_on else None,
            "exhausted": self.exhausted,
            "budget_status": self.budget_status,
        }


def project(
    ledger: Ledger,
    limits: Mapping[str, float] | None = None,
    *,
    scope: str = "global",
    window_days: int = 7,
    now: datetime | None = None,
    filters: Filters | None = None,
) -> list[Projection]:
    """Project each scope value. `limits` maps a scope value (or "*" for every value, "(none)" for
    the calls that have no value, as in the row filters, or any key when scope is "global") to its
    monthly limit in USD."""
    if scope != "global" and scope not in DIMENSIONS:
        raise QueryError(f"unknown scope {scope!r}; choose from global, {', '.join(DIMENSIONS)}")
    whole_number(window_days, "window_days", low=1, high=MAX_WINDOW_DAYS)
    limits = dict(limits or {})
    if scope == "global" and len(limits) > 1:
        raise QueryError(f"scope global takes one budget, not {len(limits)}: {', '.join(limits)}")
    for name, limit in limits.items():
        non_negative_number(limit, f"budget {name!r} (USD)")
    moment = (now or utc_now()).astimezone(timezone.utc)
    today = moment.date()
    month_start = today.replace(day=1)
    window_start = today - timedelta(days=window_days)
    dimension = None if scope == "global" else scope
    daily = ledger.daily_costs(scope=dimension, since=min(month_start, window_start), filters=filters)

    month_to_date: dict[str | None, float] = defaultdict(float)
    window_total: dict[str | None, float] = defaultdict(float)
    month_days: dict[str | None, list[tuple[date, float]]] = defaultdict(list)
    for value, day_text, cost in daily:
        day = date.fromisoformat(day_text)
        # Every running sum rounded as a report rounds it (usd_sum): nine days of $0.10 are $0.90,
        # not 0.8999999999999999, so a budget of $0.90 is exhausted, as `report` says it is spent.
        if day >= month_start:
            month_to_date[value] = usd_sum(month_to_date[value] + cost)
            month_days[value].append((day, cost))
        if window_start <= day < today:
            window_total[value] = usd_sum(window_total[value] + cost)

    values: set[str | None] = set(month_to_date) | set(window_total)
    if dimension is None:
        values = {"*"}
    else:
        values |= {_value_of(key) for key in limits if key != DEFAULT_KEY}
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    month_end = datetime(today.year, today.month, days_in_month, tzinfo=timezone.utc) + timedelta(days=1)
    remaining_days = (month_end - moment).total_seconds() / 86400

    results = []
    for value in sorted(values, key=lambda v: (v is None, v or "")):
        spent = month_to_date.get(value, 0.0)
        rate = usd_sum(window_total.get(value, 0.0) / window_days)
        budget = _limit_for(limits, dimension, value)
        runs_out, status = _run_out(budget, spent, rate, moment, remaining_days, month_days.get(value, []))
        results.append(
            Projection(
                scope=scope,
                value=None if dimension is None else value,
                month_to_date_usd=spent,
                daily_rate_usd=rate,
                projected_month_end_usd=usd_sum(spent + rate * remaining_days),
                limit_usd=budget,
                runs_out_on=runs_out,
                exhausted=status == EXHAUSTED,
            )
        )
    results.sort(key=lambda p: -p.projected_month_end_usd)
    return results


def _value_of(key: str) -> str | None:
    """The scope value a budget's name stands for: "(none)" is the unset group (None), as in the
    row filters, not a value of that spelling."""
    return None if key == NONE_VALUE else key


def _limit_for(limits: Mapping[str, float], dimension: str | None, value: str | None) -> float | None:
    if not limits:
        return None
    if dimension is None:
        return float(next(iter(limits.values())))
    key = NONE_VALUE if value is None else value
    if key in limits:
        return float(limits[key])
    return float(limits[DEFAULT_KEY]) if DEFAULT_KEY in limits else None


def _run_out(
    limit: float | None,
    spent: float,
    rate: float,
    moment: datetime,
    days_left: float,
    days: list[tuple[date, float]],
) -> tuple[date | None, str | None]:
    """(the day the budget ran or runs out, its status); no day when it is not reached in the
    `days_left` of the month."""
    if limit is None:
        return None, None
    if spent >= limit:
        total = 0.0
        for day, cost in sorted(days):
            total = usd_sum(total + cost)
            if total >= limit:
                return day, EXHAUSTED
        return moment.date(), EXHAUSTED
    # Compared in days before any date arithmetic: a tiny rate gives a run-out centuries away,
    # past what a date can hold, and a monthly budget starts again at the month's end anyway.
    if rate <= 0 or (limit - spent) / rate >= days_left:
        return None, NOT_REACHED
    return (moment + timedelta(days=(limit - spent) / rate)).date(), RUNS_OUT
