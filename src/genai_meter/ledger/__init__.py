"""The ledger: one row per LLM call, for reports, export, projection and reconciliation.

Write side (the instrumentation calls it once per call; `submit` never blocks and never raises)::

    from genai_meter.ledger import LedgerWriter, default_ledger_url

    writer = LedgerWriter(default_ledger_url())          # or "postgresql://user@host/db"
    writer.submit(record)                                 # a genai_meter CallRecord
    writer.close()                                        # also done at exit

Read side::

    from genai_meter.ledger import open_ledger

    with open_ledger(url) as ledger:
        ledger.totals()                                   # today, this month, all time
        ledger.report(group_by=["user"], period="day", since="2026-01-01", top=10)
        for row in ledger.export(since="2026-01-01"): ...
    project(ledger, {"acme": 500.0}, scope="tenant")     # month-end estimate, budget run-out date

SQLite (WAL mode) is the default backend; PostgreSQL is chosen by a `postgresql://` URL.
Backend-specific SQL lives in `_sqlite` and `_postgres`; everything else is shared.
"""

from __future__ import annotations

from ._errors import (
    FetchError,
    LedgerError,
    LedgerUnavailable,
    LedgerURLError,
    QueryError,
    ReportFormatError,
)
from ._ledger import Figures, Ledger, ReportRow, open_ledger
from ._projection import Projection, project
from ._provider_reports import ProviderFigures, add_report, fetch_reports, load_report_file
from ._reconcile import Line, Reconciliation, reconcile
from ._url import default_ledger_url, parse_ledger_url
from ._writer import LedgerWriter, default_spool_path

__all__ = [
    "FetchError",
    "Figures",
    "Ledger",
    "LedgerError",
    "LedgerURLError",
    "LedgerUnavailable",
    "LedgerWriter",
    "Line",
    "Projection",
    "ProviderFigures",
    "QueryError",
    "Reconciliation",
    "ReportFormatError",
    "ReportRow",
    "add_report",
    "default_ledger_url",
    "default_spool_path",
    "fetch_reports",
    "load_report_file",
    "open_ledger",
    "parse_ledger_url",
    "project",
    "reconcile",
]
