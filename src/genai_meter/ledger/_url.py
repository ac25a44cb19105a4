"""Ledger URLs: which backend, and where.

`sqlite:///relative.db`, `sqlite:////abs/path.db` and plain filesystem paths open SQLite;
`postgresql://user@host:port/db` opens PostgreSQL. PostgreSQL URLs may carry `schema=NAME` (ours,
stripped before libpq sees it) so that several ledgers, or parallel test runs, share one database.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._redact import credentials_problem, redact_url, safe_parser_message
from ._errors import LedgerURLError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class LedgerURL:
    """A parsed URL: `kind` is "sqlite" or "postgresql"; `target` a file path or a libpq URL."""

    kind: str
    target: str
    schema: str | None = None

    def redacted(self) -> str:
        """The URL without its credentials, for messages and logs."""
        return self.target if self.kind == "sqlite" else redact_url(self.target)


def default_ledger_url() -> str:
    """SQLite file under $XDG_DATA_HOME/genai-meter (default ~/.local/share/genai-meter)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + str(Path(base, "genai-meter", "ledger.sqlite3").absolute())


def parse_ledger_url(url: str | os.PathLike[str]) -> LedgerURL:
    """Parse a ledger URL or path; raises LedgerURLError naming the bad part (and the URL without
    its credentials)."""
    text = os.fspath(url).strip()
    if not text:
        raise LedgerURLError("ledger URL is empty")
    if text.startswith(("postgresql://", "postgres://")):
        return _parse_postgres(text)
    if text.startswith("sqlite:"):
        if not text.startswith("sqlite:///"):
            raise LedgerURLError(f"ledger URL {text!r}: SQLite URLs look like sqlite:///path.db")
        path = text[len("sqlite:///") :].split("?", 1)[0]
        if not path:
            raise LedgerURLError(f"ledger URL {text!r} names no file")
        if path == ":memory:":
            raise LedgerURLError("ledger URL: an in-memory SQLite ledger would be lost; name a file")
        return LedgerURL("sqlite", path)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise LedgerURLError(f"ledger URL {redact_url(text)!r}: unknown scheme {scheme!r} (use sqlite or postgresql)")
    return LedgerURL("sqlite", text)


def _parse_postgres(text: str) -> LedgerURL:
    problem = credentials_problem(text)  # (libpq would quote such a password whole in its error)
    if problem is not None:
        raise LedgerURLError(f"ledger URL {redact_url(text)!r}: {problem}")
    parts = urlsplit(text)
    try:
        _ = parts.port  # a port that is not a number from 0 to 65535 raises
    except ValueError as error:
        raise LedgerURLError(f"ledger URL {redact_url(text)!r}: {safe_parser_message(text, str(error))}") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    kept = []
    for key, value in query:
        if key == "schema":
            if not _IDENTIFIER.match(value):
                raise LedgerURLError(f"ledger URL: schema {value!r} is not a plain SQL identifier")
            schema = value
        else:
            kept.append((key, value))
    target = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(kept)))
    return LedgerURL("postgresql", target, schema)
