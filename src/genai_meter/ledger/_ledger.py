"""`Ledger`: the read side (reports, totals, export) over either backend.

Queries are written once here against the `Database` interface; the backends supply placeholders,
week arithmetic and streaming cursors. Grouped reports read only columns carried by the covering
indexes (`ts, day, cost_usd, input_tokens, output_tokens` after the grouped column), which is what
keeps a report over a million rows well under a second on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ..names import OUTCOME_BLOCKED, OUTCOME_ERROR
from ._backend import CALLS_TABLE, LINES_TABLE, RUNS_TABLE, Database, connect
from ._errors import QueryError
from ._query import PERIODS, TimeArg, build_where, day_start, dimension_column, utc_now
from ._rows import BOOL_COLUMNS, COLUMNS, INT64_MAX

Filters = Mapping[str, str | Sequence[str] | None]

_MEASURES = (
    "count(*)",
    "coalesce(sum(input_tokens), 0)",
    "coalesce(sum(output_tokens), 0)",
    "coalesce(sum(cost_usd), 0)",
    "count(*) - count(cost_usd)",
)
_ORDERS = {
    "cost": "coalesce(sum(cost_usd), 0)",
    "calls": "count(*)",
    "tokens": "coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)",
}
ORDERS = tuple(_ORDERS)
_USD_SIGNIFICANT_DIGITS = 12


def usd_sum(value: Any) -> float:
    """A dollar sum from SQL, as every report gives it: rounded to 12 significant digits.

    The backends add floats in different orders (and SQLite and PostgreSQL round differently), so
    the same rows can sum to 0.301104 on one and 0.30110400000000004 on the other. Rounding every
    reported sum here, in one place, makes them equal; 12 digits keep a sub-cent figure exact up to
    a billion dollars, and scale with the sum as the noise does (a fixed number of decimals would not).
    """
    number = float(value or 0)
    return float(f"{number:.{_USD_SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class Figures:
    """Summed figures of a set of calls. `calls_without_cost` had no cost: unpriced models, failed
    calls and calls blocked by a budget (none of them is counted in cost_usd, never as $0)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls_without_cost: int = 0

    @classmethod
    def from_sql(cls, values: Sequence[Any]) -> Figures:
        calls, input_tokens, output_tokens, cost, without_cost = values
        return cls(
            int(calls or 0),
            int(input_tokens or 0),
            int(output_tokens or 0),
            usd_sum(cost),
            int(without_cost or 0),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "calls_without_cost": self.calls_without_cost,
        }


@dataclass(frozen=True)
class ReportRow:
    """One group of a report: its key values (None where the column is unset) and its figures."""

    keys: dict[str, str | None] = field(default_factory=dict)
    figures: Figures = field(default_factory=Figures)

    def as_dict(self) -> dict[str, Any]:
        return {**self.keys, **self.figures.as_dict()}


class Ledger:
    """Read access to a ledger. Open with `open_ledger(url)`; use as a context manager or `close()`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @property
    def description(self) -> str:
        return self.db.description

    # --- totals and reports -----------------------------------------------------------------------
    def figures(self, *, since: TimeArg = None, until: TimeArg = None, filters: Filters | None = None) -> Figures:
        where = build_where(self.db.placeholder, since=since, until=until, filters=filters)
        rows = self.db.fetch_all(f"SELECT {', '.join(_MEASURES)} FROM {CALLS_TABLE}{where.sql()}", where.params)
        return Figures.from_sql(rows[0])

    def totals(self, *, now: datetime | None = None, filters: Filters | None = None) -> dict[str, Figures]:
        """Figures for today, this month and all time (UTC)."""
        moment = now or utc_now()
        today = moment.date()
        return {
            "today": self.figures(since=today, filters=filters),
            "month": self.figures(since=today.replace(day=1), filters=filters),
            "all_time": self.figures(filters=filters),
        }

    def report(
        self,
        *,
        group_by: Sequence[str] = ("user",),
        period: str | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
        filters: Filters | None = None,
        top: int | None = None,
        order_by: str = "cost",
    ) -> list[ReportRow]:
        """Figures grouped by columns (and by day, week or month). `top` keeps the N biggest groups
        (per period when there is one), biggest first by `order_by` (cost, calls or tokens)."""
        if period is not None and period not in PERIODS:
            raise QueryError(f"unknown period {period!r}; choose from {', '.join(PERIODS)}")
        if order_by not in _ORDERS:
            raise QueryError(f"unknown order {order_by!r}; choose from {', '.join(_ORDERS)}")
        if top is not None and top < 1:
            raise QueryError(f"top must be at least 1, not {top}")
        names = list(dict.fromkeys(group_by))
        exprs = [dimension_column(name) for name in names]
        period_expr = None
        if period is not None:
            period_expr = {"day": "day", "week": self.db.week_start("day"), "month": "substr(day, 1, 7)"}[period]
            names.insert(0, period)
            exprs.insert(0, period_expr)
        where = build_where(self.db.placeholder, since=since, until=until, filters=filters)
        keys = [f"{expr} AS k{i}" for i, expr in enumerate(exprs)]
        order = _ORDERS[order_by]
        select = ", ".join([*keys, *_MEASURES])
        group = f" GROUP BY {', '.join(exprs)}" if exprs else ""
        # NULLs first on both back ends (SQLite sorts NULL first and PostgreSQL last by default),
        # written as `x IS NOT NULL, x`: `NULLS FIRST` needs SQLite 3.30, older than some distributions.
        params = list(where.params)
        if top is None:
            lead = "k0, " if period_expr is not None else ""
            # PostgreSQL takes an output alias in ORDER BY only on its own: the expression is repeated.
            ties = "".join(f", {expr} IS NOT NULL, {expr}" for expr in exprs)
            sql = f"SELECT {select} FROM {CALLS_TABLE}{where.sql()}{group} ORDER BY {lead}{order} DESC{ties}"
        else:
            partition = f"PARTITION BY {period_expr} " if period_expr is not None else ""
            # Window ORDER BY cannot see output aliases in every dialect: repeat the expressions.
            ties = "".join(f", {expr} IS NOT NULL, {expr}" for expr in exprs)
            rank = f"ROW_NUMBER() OVER ({partition}ORDER BY {order} DESC{ties})"
            lead = "k0, " if period_expr is not None else ""
            tiebreak = "".join(f", k{i} IS NOT NULL, k{i}" for i in range(len(exprs)))  # `ranked`'s columns
            sql = (
                f"SELECT * FROM (SELECT {select}, {order} AS sort_value, {rank} AS rank_in_period"
                f" FROM {CALLS_TABLE}{where.sql()}{group}) ranked"
                f" WHERE rank_in_period <= {self.db.placeholder}"
                f" ORDER BY {lead}sort_value DESC{tiebreak}"
            )
            params.append(min(int(top), INT64_MAX))  # "more groups than there are" is all of them
        rows = self.db.fetch_all(sql, params)
        width = len(exprs)
        return [
            ReportRow(
                {name: (None if value is None else str(value)) for name, value in zip(names, row[:width], strict=True)},
                Figures.from_sql(row[width : width + len(_MEASURES)]),
            )
            for row in rows
        ]

    def daily_costs(
        self, *, scope: str | None, since: TimeArg, until: TimeArg = None, filters: Filters | None = None
    ) -> list[tuple[str | None, str, float]]:
        """(scope value, day, cost) for each scope value and day with calls; scope None means global
        (value "*")."""
        where = build_where(self.db.placeholder, since=since, until=until, filters=filters)
        if scope:
            column = dimension_column(scope)
            group = f" GROUP BY {column}, day ORDER BY {column} IS NOT NULL, 1, 2"
        else:  # PostgreSQL refuses a constant in GROUP BY ("non-integer constant"): days only
            column, group = "'*'", " GROUP BY day ORDER BY 2"
        rows = self.db.fetch_all(
            f"SELECT {column}, day, coalesce(sum(cost_usd), 0) FROM {CALLS_TABLE}{where.sql()}{group}", where.params
        )
        return [(None if r[0] is None else str(r[0]), str(r[1]), usd_sum(r[2])) for r in rows]

    # --- export -----------------------------------------------------------------------------------
    def count(self, *, since: TimeArg = None, until: TimeArg = None, filters: Filters | None = None) -> int:
        return self.figures(since=since, until=until, filters=filters).calls

    def export(
        self,
        *,
        since: TimeArg = None,
        until: TimeArg = None,
        filters: Filters | None = None,
        chunk: int = 2000,
    ) -> Generator[dict[str, Any], None, None]:
        """Every matching row as a dict, in time order, streamed (constant memory). Close the
        generator (contextlib.closing) before the ledger when not reading it to the end."""
        where = build_where(self.db.placeholder, since=since, until=until, filters=filters)
        sql = f"SELECT {', '.join(COLUMNS)} FROM {CALLS_TABLE}{where.sql()} ORDER BY ts"
        metadata_at = COLUMNS.index("metadata")
        bools = [i for i, name in enumerate(COLUMNS) if name in BOOL_COLUMNS]
        # Closing this generator closes the cursor now, not when the garbage collector gets to it.
        with closing(self.db.stream(sql, where.params, chunk)) as stream:
            for values in stream:
                row = list(values)
                for i in bools:
                    row[i] = bool(row[i])
                meta = row[metadata_at]
                if isinstance(meta, str):
                    row[metadata_at] = json.loads(meta)
                yield dict(zip(COLUMNS, row, strict=True))

    # --- reconciliation storage ---------------------------------------------------------------------
    def usage_by_day_model(
        self, provider: str, since_day: str, until_day: str, operations: Collection[str] | None = None
    ) -> list[tuple[Any, ...]]:
        """(day, model, calls, input, output, cost) of a provider's calls, days [since, until), of
        the given operations only (None: all); blocked and failed calls are left out (the provider
        bills neither)."""
        ph = self.db.placeholder
        params: list[Any] = [provider, since_day, until_day, OUTCOME_BLOCKED, OUTCOME_ERROR]
        only = ""
        if operations is not None:
            wanted = sorted(operations)
            only = f" AND operation IN ({', '.join(ph for _ in wanted)})" if wanted else " AND 1 = 0"
            params += wanted
        rows = self.db.fetch_all(
            f"SELECT day, model, count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),"
            f" coalesce(sum(cost_usd), 0) FROM {CALLS_TABLE}"
            f" WHERE provider = {ph} AND day >= {ph} AND day < {ph} AND outcome NOT IN ({ph}, {ph}){only}"
            " GROUP BY day, model ORDER BY day, model",
            params,
        )
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), usd_sum(r[5])) for r in rows]

    def save_reconciliation(self, run: dict[str, Any], lines: Sequence[dict[str, Any]]) -> int:
        return self.db.save_run(run, lines)

    def reconciliation_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        names = ("id", "run_at", "provider", "source", "since_day", "until_day", "lines", "mismatches", "ok")
        rows = self.db.fetch_all(
            f"SELECT {', '.join(names)} FROM {RUNS_TABLE} ORDER BY id DESC LIMIT {self.db.placeholder}",
            (limit,),
        )
        return [dict(zip(names, _plain(row), strict=True)) for row in rows]

    def reconciliation_lines(self, run_id: int) -> list[dict[str, Any]]:
        names = (
            "day",
            "model",
            "scope",
            "measure",
            "ledger_value",
            "provider_value",
            "difference",
            "mismatch",
        )
        rows = self.db.fetch_all(
            f"SELECT {', '.join(names)} FROM {LINES_TABLE} WHERE run_id = {self.db.placeholder}"
            " ORDER BY day, model, scope, measure",
            (run_id,),
        )
        return [dict(zip(names, _plain(row), strict=True)) for row in rows]


def _plain(row: Sequence[Any]) -> list[Any]:
    return [float(v) if isinstance(v, Decimal) else v for v in row]


def open_ledger(url: str, *, timeout_s: float = 10.0) -> Ledger:
    """Open a ledger for reading (creating and migrating its schema if needed)."""
    return Ledger(connect(url, timeout_s=timeout_s))


def closed_days(days: int, *, now: datetime | None = None) -> tuple[str, str]:
    """The last `days` complete UTC days as [since, until) day strings."""
    today = (now or utc_now()).astimezone(timezone.utc).date()
    return (today - timedelta(days=days)).isoformat(), today.isoformat()


__all__ = ["Figures", "Ledger", "ReportRow", "closed_days", "day_start", "open_ledger"]
