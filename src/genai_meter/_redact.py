"""URLs as they may appear in messages and logs: without the credentials they may carry.

Credentials come in the user-info part (`user:password@`) and, for PostgreSQL's and Redis's clients,
in query parameters (`?password=...`). A URL parser's own error text is a leak too: a password holding
`#`, `?` or `/` ends the host part early for `urlsplit` (and redis-py), whose port error then quotes
the start of the password; libpq quotes a password with a stray `%` or a space whole. So parsers'
messages pass through `safe_parser_message`, and `credentials_problem` names what a URL must
percent-encode without repeating it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

# query parameters that carry a secret (libpq's `password`, `sslpassword`; redis-py's `password`)
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pass|pwd|sslpassword|secret|token)=)([^&#]*)")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def redact_url(url: str) -> str:
    """`url` with whatever precedes its `@` (user and password) and the values of its password
    query parameters replaced by `***`."""
    url = _SECRET_QUERY.sub(r"\1***", url)
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, slashes, _credentials = head.partition("//")
    return f"{scheme}//***@{tail}" if slashes else f"***@{tail}"


def _user_info(url: str) -> str | None:
    """What precedes the last `@` after `//`, as the writer of `url` meant it (None without one)."""
    _scheme, slashes, rest = url.partition("//")
    if not slashes or "@" not in rest:
        return None
    return rest.rpartition("@")[0]


def credentials_problem(url: str) -> str | None:
    """Why the user name or password in `url` cannot be read as written (without repeating it), or
    None: `#`, `?`, `/` or a space in them, or a `%` that does not start a percent-escape."""
    info = _user_info(url)
    if info is None:
        return None
    if any(mark in info for mark in "#?/ ") or _BAD_ESCAPE.search(info):
        return (
            "its user name or password holds a character a URL must percent-encode "
            "('#' %23, '?' %3F, '/' %2F, ' ' %20, '%' %25)"
        )
    return None


def safe_parser_message(url: str, message: str) -> str:
    """A URL parser's error `message` about `url`, or, where it could quote credentials (the parser
    cut the host part inside them, or the text holds them), a message that names the cause instead."""
    problem = credentials_problem(url)
    if problem is not None:
        return problem
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = ""
    info = _user_info(url)
    if info is not None and "@" not in netloc:
        return "its host part cannot be read"  # the parser stopped inside what precedes the `@`
    secrets = [info, unquote(info)] if info else []
    secrets += [unquote(found[2]) for found in _SECRET_QUERY.finditer(url)]
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, "***")
        password = secret.partition(":")[2]
        if password:
            message = message.replace(password, "***")
    return message
