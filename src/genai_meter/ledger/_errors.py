"""Errors the ledger raises to its callers (the read side and the CLI; the writer never raises).

One small hierarchy so the CLI can turn any of them into a one-line message instead of a traceback.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a problem the user can act on (the message says what and where)."""


class LedgerURLError(LedgerError):
    """The ledger URL is malformed or names an unknown backend."""


class LedgerUnavailable(LedgerError):
    """The database cannot be reached or opened."""


class QueryError(LedgerError):
    """A report, export or projection was asked for with invalid arguments (group, date, filter)."""


class ReportFormatError(LedgerError):
    """A provider usage or cost report is malformed (names the file or URL and the field)."""


class FetchError(LedgerError):
    """A provider report could not be fetched (network, HTTP status, missing admin key)."""
