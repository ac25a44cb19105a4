"""The `budgets:` section of the configuration file, parsed and checked once at start-up.

Every mistake is a `BudgetPolicyError` naming the file, the budget and the field: a typo that was
silently ignored would be a budget silently not enforced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from genai_meter._redact import credentials_problem, redact_url, safe_parser_message
from genai_meter.budgets._errors import BudgetPolicyError
from genai_meter.budgets._periods import PERIODS

DIMENSIONS = ("user", "tenant", "feature")
MODES = ("soft", "hard")
FAIL_MODES = ("open", "closed")
WILDCARD = "*"
GLOBAL_SCOPE_VALUE = "global"
DEFAULT_THRESHOLDS = (75.0, 90.0, 100.0)

_TOP_KEYS = {
    "store",
    "on_store_error",
    "timezone",
    "policies",
    "blocked",
    "key_prefix",
    "store_timeout_s",
    "block_refresh_s",
}
_POLICY_KEYS = {
    "name",
    "scope",
    "match",
    "period",
    "limit_usd",
    "mode",
    "thresholds",
    "max_requests",
    "max_tokens",
    "timezone",
    "on_store_error",
}


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """One budget. `scope` is () for the global budget; `match` maps each scope dimension to a value
    or `*` (each value gets its own budget)."""

    name: str
    scope: tuple[str, ...] = ()
    match: tuple[tuple[str, str], ...] = ()
    period: str = "month"
    limit_usd: float | None = None
    mode: str = "soft"
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    max_requests: int | None = None
    max_tokens: int | None = None
    timezone: str = "UTC"
    on_store_error: str = "open"

    def match_value(self, dimension: str) -> str:
        return dict(self.match).get(dimension, WILDCARD)


def as_calls_carry(dimension: str, value: str, pseudonymize: Callable[[str], str] | None) -> str:
    """A value the configuration names, in the form the app's calls carry it: a user pseudonymised
    when the app pseudonymises users (`pseudonymize_users_key`); other dimensions as they are.
    Budgets, the block list and budget projections all compare configured users this way."""
    return pseudonymize(value) if pseudonymize is not None and dimension == "user" else value


@dataclass(frozen=True, slots=True)
class BlockEntry:
    kind: str  # "user" or "tenant"
    value: str
    reason: str


@dataclass(frozen=True)
class BudgetConfig:
    """Parsed policy plus where spend is kept and what to do when that store is unreachable."""

    policies: tuple[BudgetPolicy, ...] = ()
    store: str = "memory"
    on_store_error: str = "open"
    timezone: str = "UTC"
    blocked: tuple[BlockEntry, ...] = ()
    key_prefix: str = "genai_meter:budget"
    store_timeout_s: float = 0.25
    block_refresh_s: float = 1.0
    source: str = "<config>"


def _fail(
    source: str, message: str, budget: str | None = None, field: str | None = None
) -> BudgetPolicyError:
    return BudgetPolicyError(message, source=source, budget=budget, field=field)


def _timezone(value: Any, source: str, budget: str | None, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(
            source, f"expected a time zone name such as 'Europe/Berlin', got {value!r}", budget, field
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(source, f"unknown time zone {value!r}", budget, field) from None
    return value


def _choice(value: Any, choices: tuple[str, ...], source: str, budget: str | None, field: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise _fail(source, f"{value!r} is not one of {', '.join(choices)}", budget, field)
    return value.strip().lower()


def _number(value: Any, source: str, budget: str | None, field: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(source, f"expected a number, got {value!r}", budget, field)
    if value < 0 or (positive and value == 0):
        raise _fail(
            source,
            f"expected a number {'above' if positive else 'of at least'} 0, got {value!r}",
            budget,
            field,
        )
    return float(value)


def _count(value: Any, source: str, budget: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(source, f"expected a whole number of at least 0, got {value!r}", budget, field)
    return value


def _parse_scope(value: Any, source: str, budget: str) -> tuple[str, ...]:
    if value is None or value == "global" or value == []:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise _fail(
            source,
            f"expected global, one of {', '.join(DIMENSIONS)}, or a list of them, got {value!r}",
            budget,
            "scope",
        )
    scope: list[str] = []
    for item in items:
        if item not in DIMENSIONS:
            raise _fail(source, f"{item!r} is not global or one of {', '.join(DIMENSIONS)}", budget, "scope")
        if item in scope:
            raise _fail(source, f"{item!r} is listed twice", budget, "scope")
        scope.append(item)
    return tuple(scope)


def _parse_match(value: Any, scope: tuple[str, ...], source: str, budget: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        value = {}
    if isinstance(value, str | int) and not isinstance(value, bool) and len(scope) == 1:
        value = {scope[0]: value}  # `match: acme` is short for `match: {tenant: acme}`
    if not isinstance(value, Mapping):
        raise _fail(
            source, f"expected a mapping from scope to a value or '*', got {value!r}", budget, "match"
        )
    for key, item in value.items():
        if key not in scope:
            raise _fail(
                source,
                f"{key!r} is not in the budget's scope {list(scope) or 'global'}",
                budget,
                f"match.{key}",
            )
        if isinstance(item, bool) or not isinstance(item, str | int) or str(item) == "":
            raise _fail(source, f"expected one value or '*', got {item!r}", budget, f"match.{key}")
    return tuple((dim, str(value.get(dim, WILDCARD))) for dim in scope)


def _parse_thresholds(value: Any, source: str, budget: str) -> tuple[float, ...]:
    if value is None:
        return DEFAULT_THRESHOLDS
    if not isinstance(value, list | tuple):
        raise _fail(source, f"expected a list of percentages, got {value!r}", budget, "thresholds")
    found = {_number(item, source, budget, "thresholds", positive=True) for item in value}
    return tuple(sorted(found))


def _parse_policy(raw: Any, index: int, source: str, defaults: tuple[str, str]) -> BudgetPolicy:
    where = f"policies[{index}]"
    if not isinstance(raw, Mapping):
        raise _fail(source, f"expected a mapping, got {raw!r}", None, where)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(source, f"every budget needs a non-empty name, got {name!r}", None, f"{where}.name")
    unknown = sorted(set(raw) - _POLICY_KEYS)
    if unknown:
        raise _fail(
            source, f"unknown field (expected one of {', '.join(sorted(_POLICY_KEYS))})", name, unknown[0]
        )
    scope = _parse_scope(raw.get("scope"), source, name)
    match = _parse_match(raw.get("match"), scope, source, name)
    period = _choice(raw.get("period", "month"), PERIODS, source, name, "period")
    limit = raw.get("limit_usd")
    limit_usd = None if limit is None else _number(limit, source, name, "limit_usd")
    max_requests = (
        None if raw.get("max_requests") is None else _count(raw["max_requests"], source, name, "max_requests")
    )
    max_tokens = (
        None if raw.get("max_tokens") is None else _count(raw["max_tokens"], source, name, "max_tokens")
    )
    if limit_usd is None and max_requests is None and max_tokens is None:
        raise _fail(source, "a budget needs limit_usd, max_requests or max_tokens", name, "limit_usd")
    thresholds = _parse_thresholds(raw.get("thresholds"), source, name)
    if limit_usd is None and raw.get("thresholds") is not None:
        # Thresholds fire on USD spend only; accepted here they would silently never fire.
        raise _fail(
            source,
            "thresholds are percentages of limit_usd, and this budget has no limit_usd "
            "(max_requests and max_tokens have no thresholds)",
            name,
            "thresholds",
        )
    return BudgetPolicy(
        name=name.strip(),
        scope=scope,
        match=match,
        period=period,
        limit_usd=limit_usd,
        mode=_choice(raw.get("mode", "soft"), MODES, source, name, "mode"),
        thresholds=thresholds,
        max_requests=max_requests,
        max_tokens=max_tokens,
        timezone=_timezone(raw.get("timezone", defaults[0]), source, name, "timezone"),
        on_store_error=_choice(
            raw.get("on_store_error", defaults[1]), FAIL_MODES, source, name, "on_store_error"
        ),
    )


def _parse_blocked(value: Any, source: str) -> tuple[BlockEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise _fail(
            source, f"expected a list of {{user: ..., reason: ...}} entries, got {value!r}", None, "blocked"
        )
    entries = []
    for index, raw in enumerate(value):
        where = f"blocked[{index}]"
        if not isinstance(raw, Mapping):
            raise _fail(source, f"expected a mapping, got {raw!r}", None, where)
        kinds = [key for key in ("user", "tenant") if key in raw]
        unknown = sorted(set(raw) - {"user", "tenant", "reason"})
        if unknown:
            raise _fail(
                source, "unknown field (expected user or tenant, and reason)", None, f"{where}.{unknown[0]}"
            )
        if len(kinds) != 1:
            raise _fail(source, "expected exactly one of user or tenant", None, where)
        target = raw[kinds[0]]
        if isinstance(target, bool) or not isinstance(target, str | int) or str(target) == "":
            raise _fail(source, f"expected a {kinds[0]} id, got {target!r}", None, f"{where}.{kinds[0]}")
        reason = raw.get("reason", "")
        if not isinstance(reason, str):
            raise _fail(source, f"expected text, got {reason!r}", None, f"{where}.reason")
        entries.append(BlockEntry(kinds[0], str(target), reason))
    return tuple(entries)


def _store_url(value: Any, source: str) -> str:
    """The store URL, checked as far as can be without connecting (a Redis URL with redis-py's own
    parser), so that a mistake is an error now rather than a guard that cannot be built."""
    expected = "expected memory, sqlite:///path or redis://host:port/db"
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, f"{expected}, got {value!r}", None, "store")
    url = value.strip()
    if url == "memory":
        return url
    if url.startswith("sqlite://"):
        if not url[len("sqlite://") :]:
            raise _fail(
                source, "sqlite:// needs a file path, e.g. sqlite:///var/lib/app/budgets.db", None, "store"
            )
        return url
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from redis.connection import parse_url
        except ImportError:
            message = f"{redact_url(url)!r} needs the redis package (pip install 'genai-meter[redis]')"
            raise _fail(source, message, None, "store") from None
        problem = credentials_problem(url)
        if problem is not None:
            raise _fail(source, f"{redact_url(url)!r} is not a valid Redis URL: {problem}", None, "store")
        try:
            parse_url(url)
        except ValueError as error:
            message = safe_parser_message(url, str(error))
            raise _fail(source, f"{redact_url(url)!r} is not a valid Redis URL: {message}", None, "store") from None
        return url
    raise _fail(source, f"{expected}, got {redact_url(url)!r}", None, "store")


def parse_budget_config(section: Mapping[str, Any] | None, source: str = "<config>") -> BudgetConfig:
    """Parse the `budgets:` mapping of the configuration file; see docs/budgets.md for the schema."""
    if section is None:
        return BudgetConfig(source=source)
    if not isinstance(section, Mapping):
        raise _fail(
            source, f"the budgets section must be a mapping, got {type(section).__name__}", None, "budgets"
        )
    unknown = sorted(set(section) - _TOP_KEYS)
    if unknown:
        raise _fail(
            source, f"unknown field (expected one of {', '.join(sorted(_TOP_KEYS))})", None, unknown[0]
        )
    timezone = _timezone(section.get("timezone", "UTC"), source, None, "timezone")
    on_error = _choice(section.get("on_store_error", "open"), FAIL_MODES, source, None, "on_store_error")
    raw_policies = section.get("policies") or []
    if not isinstance(raw_policies, list | tuple):
        raise _fail(source, f"expected a list of budgets, got {raw_policies!r}", None, "policies")
    policies = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_policies):
        policy = _parse_policy(raw, index, source, (timezone, on_error))
        if policy.name in seen:
            raise _fail(source, "two budgets have this name", policy.name, "name")
        seen.add(policy.name)
        policies.append(policy)
    prefix = section.get("key_prefix", "genai_meter:budget")
    if not isinstance(prefix, str) or not prefix:
        raise _fail(source, f"expected non-empty text, got {prefix!r}", None, "key_prefix")
    return BudgetConfig(
        policies=tuple(policies),
        store=_store_url(section.get("store", "memory"), source),
        on_store_error=on_error,
        timezone=timezone,
        blocked=_parse_blocked(section.get("blocked"), source),
        key_prefix=prefix,
        store_timeout_s=_number(
            section.get("store_timeout_s", 0.25), source, None, "store_timeout_s", positive=True
        ),
        block_refresh_s=_number(section.get("block_refresh_s", 1.0), source, None, "block_refresh_s"),
        source=source,
    )
