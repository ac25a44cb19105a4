"""`genai-meter report | export | project | reconcile`: the ledger's read side on the command line.

Every handler returns an exit code: 0 done, 1 reconciliation mismatch, 2 a user error, printed as
one line on stderr (bad date, unknown group, unreachable database, malformed report file). Option
values are checked here, with messages that name the option and the value, before any work.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from ..ledger import (
    LedgerError,
    ProviderFigures,
    QueryError,
    default_ledger_url,
    fetch_reports,
    load_report_file,
    open_ledger,
    parse_ledger_url,
    project,
    reconcile,
)
from ..ledger._ledger import ORDERS, Ledger
from ..ledger._projection import MAX_WINDOW_DAYS
from ..ledger._provider_reports import PROVIDERS
from ..ledger._query import DIMENSIONS, PERIODS, non_negative_number, parse_day, utc_now, whole_number
from ..ledger._render import FORMATS, Progress, stream_rows, write_rows
from ..ledger._rows import COLUMNS, INT64_MAX

LEDGER_URL_ENV = "GENAI_METER_LEDGER_URL"
# Every group is a filter too (--request-model for request_model).
_FILTERS = tuple(DIMENSIONS)
_FIGURE_COLUMNS = ["calls", "input_tokens", "output_tokens", "cost_usd", "calls_without_cost"]

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="spend totals, or figures grouped by user/tenant/feature/model/provider and period",
        description="Without --group-by or --period: totals for today, this month and all time (UTC).",
    )
    _common(report)
    report.add_argument(
        "--group-by",
        "-g",
        action="append",
        default=[],
        metavar="NAME",
        help=f"group by one or more of: {', '.join(DIMENSIONS)} (repeat or comma-separate)",
    )
    report.add_argument("--period", "-p", choices=PERIODS, help="also group by UTC day, week (Monday) or month")
    report.add_argument("--top", type=int, metavar="N", help="keep the N biggest groups (per period)")
    report.add_argument("--order", choices=ORDERS, help="what 'biggest' means, and the order (default cost)")
    report.add_argument("--format", "-f", choices=FORMATS, default="table")
    report.set_defaults(func=_guarded(_report))

    export = subparsers.add_parser("export", help="stream ledger rows as CSV, JSON or JSON lines")
    _common(export)
    export.add_argument("--format", "-f", choices=("csv", "json", "jsonl"), default="jsonl")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(func=_guarded(_export))

    proj = subparsers.add_parser(
        "project", help="month-end spend at the recent daily rate, and when each budget runs out"
    )
    _common(proj, dates=False)
    proj.add_argument("--scope", default="global", choices=("global", *DIMENSIONS))
    proj.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="NAME=USD",
        help="monthly limit for a scope value (NAME '*' = every value; any NAME for global)",
    )
    proj.add_argument(
        "--config",
        metavar="FILE",
        help="take the monthly limits of the scope's budgets from this configuration file "
        "(default $GENAI_METER_CONFIG, when set)",
    )
    proj.add_argument("--window-days", type=int, default=7, help="days the daily rate is averaged over")
    proj.add_argument("--format", "-f", choices=FORMATS, default="table")
    proj.set_defaults(func=_guarded(_project))

    rec = subparsers.add_parser(
        "reconcile",
        help="compare the ledger with the provider's usage and cost reports; exit 1 on a mismatch",
    )
    rec.add_argument("--ledger", metavar="URL", help=f"ledger URL (default ${LEDGER_URL_ENV} or the user's file)")
    rec.add_argument("--provider", choices=PROVIDERS, help="needed to fetch; read from report files otherwise")
    rec.add_argument("--report", action="append", default=[], metavar="FILE", help="saved report JSON (repeatable)")
    rec.add_argument("--base-url", help="provider API base URL (default the provider's public API)")
    rec.add_argument("--since", help="first day (default 7 closed days ago)")
    rec.add_argument("--until", help="day after the last (default today: closed days only)")
    rec.add_argument("--include-today", action="store_true", help="also compare today's partial day")
    rec.add_argument("--threshold-usd", type=float, default=0.01, help="cost difference allowed per line")
    rec.add_argument("--threshold-tokens", type=int, default=0, help="token/request difference allowed per line")
    rec.add_argument("--all", action="store_true", help="print every compared line, not only mismatches")
    rec.add_argument("--no-store", action="store_true", help="do not store the run in the ledger")
    rec.add_argument("--format", "-f", choices=FORMATS, default="table")
    rec.set_defaults(func=_guarded(_reconcile))


def _common(parser: argparse.ArgumentParser, dates: bool = True) -> None:
    """The ledger and the row filters; `dates`: the --since / --until range too (a projection has
    its own: the month so far and the --window-days before today)."""
    parser.add_argument("--ledger", metavar="URL", help=f"ledger URL (default ${LEDGER_URL_ENV} or the user's file)")
    if dates:
        parser.add_argument("--since", help="from (inclusive): YYYY-MM-DD, ISO date-time, today, yesterday, Nd")
        parser.add_argument("--until", help="to (exclusive), same forms as --since")
    for name in _FILTERS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            action="append",
            metavar="VALUE",
            help=f"only this {name} (repeatable; '(none)' = unset)",
        )


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            code = handler(args)
            sys.stdout.flush()  # a reader gone (`| head`) shows here, not in Python's flush at exit
            return code
        except BrokenPipeError:
            # The reader stopped reading (`genai-meter export | head`): nothing is wrong, so no
            # message; main() ends it quietly. What is left in stdout's buffer would fail again when
            # Python flushes it at exit and print a traceback: stdout goes to /dev/null first.
            _quiet_stdout()
            raise
        except (LedgerError, OSError, sqlite3.Error) as exc:
            return _fail(args, str(exc) or exc.__class__.__name__)
        except Exception as exc:
            if exc.__class__.__module__.startswith("psycopg"):
                return _fail(args, f"database error: {exc}")
            raise

    return run


def _quiet_stdout() -> None:
    """Point the stdout file descriptor at /dev/null (when it has one: not under a test's capture)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        pass


def _fail(args: argparse.Namespace, message: str) -> int:
    print(f"genai-meter {args.command}: {message}", file=sys.stderr)
    return 2


def _ledger_url(args: argparse.Namespace) -> str:
    return str(args.ledger or os.environ.get(LEDGER_URL_ENV) or default_ledger_url())


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[Ledger]:
    url = _ledger_url(args)
    parsed = parse_ledger_url(url)
    if parsed.kind == "sqlite" and not Path(parsed.target).expanduser().exists():
        raise LedgerError(f"no ledger at {parsed.target} (set --ledger or ${LEDGER_URL_ENV})")
    with open_ledger(url) as ledger:
        yield ledger


def _filters(args: argparse.Namespace) -> dict[str, list[str]]:
    return {name: values for name in _FILTERS if (values := getattr(args, name, None))}


# --- report -------------------------------------------------------------------------------------------
def _report(args: argparse.Namespace) -> int:
    groups = [part.strip() for value in args.group_by for part in value.split(",") if part.strip()]
    filters = _filters(args)
    if args.top is not None and args.top < 1:
        raise QueryError(f"--top must be at least 1, not {args.top}")
    if not groups and not args.period:
        # The totals have no groups to keep or order: refused rather than ignored.
        for option, value in (("--top", args.top), ("--order", args.order)):
            if value is not None:
                raise QueryError(f"{option} {value} needs --group-by or --period (the totals have no groups to rank)")
    with _open(args) as ledger:
        if not groups and not args.period:
            if args.since or args.until:
                figures = ledger.figures(since=args.since, until=args.until, filters=filters)
                rows = [{"period": "range", **figures.as_dict()}]
            else:
                totals = ledger.totals(filters=filters)
                rows = [{"period": name, **figures.as_dict()} for name, figures in totals.items()]
            write_rows(rows, ["period", *_FIGURE_COLUMNS], args.format, sys.stdout)
            return 0
        result = ledger.report(
            group_by=groups,
            period=args.period,
            since=args.since,
            until=args.until,
            filters=filters,
            top=args.top,
            order_by=args.order or "cost",
        )
    columns = ([args.period] if args.period else []) + list(dict.fromkeys(groups)) + _FIGURE_COLUMNS
    write_rows([row.as_dict() for row in result], columns, args.format, sys.stdout)
    return 0


# --- export -------------------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    filters = _filters(args)
    with _open(args) as ledger:
        total = ledger.count(since=args.since, until=args.until, filters=filters) if sys.stderr.isatty() else None
        progress = Progress(total)
        exported = ledger.export(since=args.since, until=args.until, filters=filters)

        def rows() -> Iterator[dict[str, Any]]:
            for row in exported:
                yield row
                progress.step()

        # Closed here, while the ledger is open, also when writing fails (a full disk, a closed
        # pipe): left to the garbage collector, the cursor was closed after the database, with a
        # "Cannot operate on a closed database" traceback.
        with closing(exported), _output(args.output) as out:
            stream_rows(rows(), COLUMNS, args.format, out)
        progress.finish()
    return 0


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if not path or path == "-":
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle


# --- project ------------------------------------------------------------------------------------------
def _policy_limits(path: str, scope: str) -> dict[str, float]:
    """Monthly USD limits of the budgets whose scope is exactly `scope`, keyed by matched value: a
    user as the ledger holds it (pseudonymised when the app pseudonymises users)."""
    from .._config import ConfigError, load_config
    from ..budgets import BudgetPolicyError, parse_budget_config
    from ..budgets._config import WILDCARD, as_calls_carry
    from ._budgets import UserError, app_pseudonymizer

    try:
        config = load_config({"GENAI_METER_CONFIG": path})
        budgets = parse_budget_config(config.budgets, path)
        pseudonymize = app_pseudonymizer(path)
    except (ConfigError, BudgetPolicyError, UserError) as error:
        raise QueryError(str(error)) from None
    wanted = () if scope == "global" else (scope,)
    limits: dict[str, float] = {}
    for policy in budgets.policies:
        if policy.scope == wanted and policy.period == "month" and policy.limit_usd is not None:
            value = policy.match_value(scope) if wanted else "global"
            if wanted and value != WILDCARD:
                value = as_calls_carry(scope, value, pseudonymize)
            limits[value] = float(policy.limit_usd)
    return limits


def _project(args: argparse.Namespace) -> int:
    config_path = args.config or os.environ.get("GENAI_METER_CONFIG")
    limits: dict[str, float] = _policy_limits(config_path, args.scope) if config_path else {}
    if args.scope == "global" and args.budget:
        # The global scope has one budget, whatever its name: a --budget replaces the
        # configuration's, as `--budget acme=...` replaces the configuration's limit for acme.
        limits = {}
    for text in args.budget:
        name, sep, amount = text.rpartition("=")
        if not sep or not name:
            raise QueryError(f"--budget {text!r}: expected NAME=USD")
        try:
            limits[name] = non_negative_number(float(amount), f"--budget {text!r}")
        except ValueError:
            raise QueryError(f"--budget {text!r}: {amount!r} is not a number of USD") from None
    whole_number(args.window_days, "--window-days", low=1, high=MAX_WINDOW_DAYS)
    with _open(args) as ledger:
        result = project(ledger, limits, scope=args.scope, window_days=args.window_days, filters=_filters(args))
    columns = [
        "value",
        "month_to_date_usd",
        "daily_rate_usd",
        "projected_month_end_usd",
        "limit_usd",
        "runs_out_on",
        "exhausted",
        "budget_status",
    ]
    if args.scope == "global":
        columns = columns[1:]
    write_rows([p.as_dict() for p in result], columns, args.format, sys.stdout)
    return 0


# --- reconcile ----------------------------------------------------------------------------------------
def _reconcile_days(args: argparse.Namespace) -> tuple[date, date]:
    """[since, until) as UTC days: closed days only unless --include-today; 7 days by default."""
    today = utc_now().date()
    until = parse_day(args.until, name="--until") if args.until else None
    if until is None:
        until = today + timedelta(days=1) if args.include_today else today
    if not args.include_today and until > today:
        until = today  # closed days only: today's figures are still moving on both sides
    since = parse_day(args.since, name="--since") if args.since else None
    if since is None:
        since = until - timedelta(days=7) if until > date.min + timedelta(days=7) else date.min
    if until <= since:
        raise QueryError(f"no closed UTC day between {since} and {until} (use --include-today for today)")
    return since, until


def _reconcile(args: argparse.Namespace) -> int:
    non_negative_number(args.threshold_usd, "--threshold-usd")
    whole_number(args.threshold_tokens, "--threshold-tokens", low=0, high=INT64_MAX)
    since, until = _reconcile_days(args)

    figures = ProviderFigures()
    if args.report and args.base_url:
        raise QueryError(f"--base-url {args.base_url} is for fetching; with --report the reports are read from files")
    if args.report:
        for path in args.report:
            load_report_file(path, figures)
        if args.provider and figures.provider and figures.provider != args.provider:
            raise QueryError(f"--provider {args.provider} but the report files are {figures.provider} reports")
        source = ", ".join(args.report)
    else:
        if not args.provider:
            raise QueryError("give --report FILE, or --provider to fetch the reports with an admin key")
        fetch_reports(args.provider, since, until, figures, base_url=args.base_url)
        figures.provider = figures.provider or args.provider
        source = args.base_url or "api"
    with _open(args) as ledger:
        result = reconcile(
            ledger,
            figures,
            since_day=since.isoformat(),
            until_day=until.isoformat(),
            threshold_usd=args.threshold_usd,
            threshold_tokens=args.threshold_tokens,
            store=not args.no_store,
            source=source,
        )
    lines = result.lines if args.all else result.mismatches
    columns = ["day", "model", "measure", "ledger", "provider", "difference"] + (["mismatch"] if args.all else [])
    if lines or args.format != "table":
        write_rows([line.as_dict() for line in lines], columns, args.format, sys.stdout)
    verdict = "match" if result.ok else f"{len(result.mismatches)} mismatch(es)"
    run = f" (run {result.run_id})" if result.run_id is not None else ""
    print(
        f"reconcile {result.provider} {result.since_day}..{result.until_day} (exclusive):"
        f" {len(result.lines)} lines compared, {verdict}{run}",
        file=sys.stderr,
    )
    return 0 if result.ok else 1
