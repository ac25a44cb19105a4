"""Reading the providers' own usage and cost reports (saved files or fetched with an admin key).

Four report kinds are recognised by the shape of their results, so a saved file can hold any of
them (one page, a list of pages, or an object whose values are pages):
OpenAI usage (`input_tokens`, `num_model_requests`), OpenAI costs (`amount: {value, currency}`,
model read from `line_item` "<model>, <token class>"), Anthropic usage (`uncached_input_tokens`
plus cache fields) and Anthropic cost (`amount` a decimal string in cents).
Figures are keyed by (UTC day, model); "*" is the model when a report is not grouped by model.
A cost that is not for tokens (Anthropic `cost_type` web_search, code_execution) is keyed by its
cost type instead (`not_models` lists those names): the ledger prices tokens only, so such a cost
is a line of its own, on the provider side only, never mixed into a model's or the day's figures.
Each measure also records which ledger operations the reports it came from cover, so that the
ledger side is summed over the same calls (like with like): OpenAI's usage report for completions
counts chat and legacy completions calls only, its embeddings report embeddings calls only, and
Anthropic's messages usage report Messages (chat) calls; cost reports bill every operation.
A bucket read twice (two saved exports that share a day, the same file passed twice) counts once:
buckets are known by report kind, start and end; a repeat with the same results is skipped, one
with different results is refused, naming both places.
Malformed input raises ReportFormatError naming the source and the JSON path of the bad field.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ._errors import FetchError, ReportFormatError
from ._rows import INT64_MAX

ANY_MODEL = "*"
PROVIDERS = ("openai", "anthropic")
ADMIN_KEY_ENV = {"openai": "OPENAI_ADMIN_KEY", "anthropic": "ANTHROPIC_ADMIN_KEY"}
DEFAULT_BASE_URL = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
_MAX_PAGES = 1000
# Reports are a few levels deep (pages, data, buckets, results); far deeper is not a report.
_MAX_DEPTH = 32

Key = tuple[str, str]  # (day, model)
# The ledger operations a measure's figures cover; None: every operation (cost reports).
Operations = frozenset[str] | None

# OpenAI usage reports by kind (the `object` of a result, "organization.usage.<kind>.result"): the
# completions report covers Chat Completions and the Responses API ("chat") and legacy Completions.
_OPENAI_USAGE_OPERATIONS: dict[str, frozenset[str]] = {
    "completions": frozenset({"chat", "text_completion"}),
    "embeddings": frozenset({"embeddings"}),
}
_ANTHROPIC_USAGE_OPERATIONS = frozenset({"chat"})  # /usage_report/messages: the Messages API


@dataclass
class ProviderFigures:
    """What a provider says it served and billed, per (day, model); `operations` says, per measure,
    which ledger operations those figures cover."""

    provider: str | None = None
    input_tokens: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    output_tokens: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    requests: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    cost_usd: dict[Key, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    operations: dict[str, Operations] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    # Names in the model place of a key that are not models (non-token cost types): reconciliation
    # keeps them as lines of their own and does not take them for a report grouped by model.
    not_models: set[str] = field(default_factory=set)
    # (report kind, bucket start, bucket end) -> (its results, canonical JSON; where it was read).
    seen_buckets: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)

    @property
    def has_usage(self) -> bool:
        return "input_tokens" in self.operations

    @property
    def has_requests(self) -> bool:
        return "requests" in self.operations

    @property
    def has_cost(self) -> bool:
        return "cost_usd" in self.operations

    def set_provider(self, provider: str, where: str) -> None:
        if self.provider is not None and self.provider != provider:
            raise ReportFormatError(f"{where}: a {provider} report mixed with {self.provider} reports")
        self.provider = provider

    def cover(self, operations: Operations, *measures: str) -> None:
        """Record that `measures` now include figures for `operations` (joined with earlier ones)."""
        for measure in measures:
            known = self.operations.get(measure, frozenset())
            self.operations[measure] = None if known is None or operations is None else known | operations

    def values(self, measure: str) -> Mapping[Key, int | Decimal]:
        """The figures of one measure (requests, input_tokens, output_tokens, cost_usd)."""
        by_measure: dict[str, Mapping[Key, int | Decimal]] = {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }
        return by_measure[measure]


# --- parsing ----------------------------------------------------------------------------------------
def load_report_file(path: str | os.PathLike[str], figures: ProviderFigures) -> None:
    """Add the report(s) in a JSON file to `figures`."""
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise ReportFormatError(f"{name}: cannot read report file: {exc.strerror or exc}") from None
    add_report(_parse_json(data, name), name, figures)


def _parse_json(data: bytes, source: str) -> Any:
    """A JSON document; NaN and Infinity are read as floats here and refused where a field is read
    (so the message names the field's path)."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise ReportFormatError(f"{source}: not JSON text (undecodable byte at offset {exc.start})") from None
    except ValueError as exc:
        raise ReportFormatError(f"{source}: not JSON ({exc})") from None
    except RecursionError:
        raise ReportFormatError(f"{source}: not a report (JSON nested too deeply to read)") from None


def add_report(document: Any, source: str, figures: ProviderFigures) -> None:
    """Add every bucket of a parsed report document to `figures`."""
    found = 0
    for path, bucket in _buckets(document, f"{source}: $"):
        found += 1
        _add_bucket(bucket, path, figures)
    if not found and not (isinstance(document, dict) and isinstance(document.get("data"), list)):
        raise ReportFormatError(f'{source}: no report buckets found (expected {{"data": [...]}} pages)')
    figures.sources.append(source)


def _buckets(node: Any, path: str, depth: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every bucket (an object with `results`) under `node`, with its path ("<source>: $.data[0]")."""
    if depth > _MAX_DEPTH and isinstance(node, dict | list):
        raise ReportFormatError(f"{path}: nested deeper than {_MAX_DEPTH} levels (not a report)")
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _buckets(item, f"{path}[{i}]", depth + 1)
    elif isinstance(node, dict):
        if "results" in node:
            yield path, node
        elif "data" in node:
            if not isinstance(node["data"], list):
                raise ReportFormatError(f"{path}.data: expected a list of buckets")
            yield from _buckets(node["data"], f"{path}.data", depth + 1)
        else:
            for key, value in node.items():
                if isinstance(value, dict | list):
                    yield from _buckets(value, f"{path}.{key}", depth + 1)


_Reader = Callable[[dict[str, Any], str, str, ProviderFigures], None]


def _add_bucket(bucket: dict[str, Any], where: str, figures: ProviderFigures) -> None:
    day = _bucket_day(bucket, where)
    results = bucket.get("results")
    if not isinstance(results, list):
        raise ReportFormatError(f"{where}.results: expected a list")
    by_kind: dict[str, list[tuple[_Reader, dict[str, Any], str]]] = defaultdict(list)
    for i, result in enumerate(results):
        at = f"{where}.results[{i}]"
        if not isinstance(result, dict):
            raise ReportFormatError(f"{at}: expected an object")
        kind, reader = _result_kind(result, at)
        by_kind[kind].append((reader, result, at))
    for kind, read in by_kind.items():
        if _first_time(figures, kind, bucket, [result for _, result, _ in read], where, day):
            for reader, result, at in read:
                reader(result, day, at, figures)


def _result_kind(result: dict[str, Any], at: str) -> tuple[str, _Reader]:
    """Which report a result comes from ("openai usage completions", "anthropic cost"...), and the
    function that reads it."""
    amount = result.get("amount")
    if "uncached_input_tokens" in result:
        return "anthropic usage", _anthropic_usage
    if isinstance(amount, str) or (amount is not None and "cost_type" in result):
        return "anthropic cost", _anthropic_cost
    if isinstance(amount, dict):
        return "openai costs", _openai_cost
    if "input_tokens" in result or "num_model_requests" in result:
        return f"openai usage {_openai_usage_kind(result, at)}", _openai_usage
    raise ReportFormatError(f"{at}: not a usage or cost result of a known provider")


def _first_time(
    figures: ProviderFigures, kind: str, bucket: dict[str, Any], results: list[dict[str, Any]], where: str, day: str
) -> bool:
    """Whether this bucket's results of `kind` are new. Two saved exports that share a day, or one
    file passed twice, hold the same bucket: it is counted once. The same bucket with other figures
    (exports made at different times, or grouped differently) cannot both be right: refused."""
    start = bucket.get("start_time", bucket.get("starting_at"))
    end = bucket.get("end_time", bucket.get("ending_at"))
    identity = (kind, repr(start), repr(end))
    content = json.dumps(sorted(json.dumps(r, sort_keys=True, default=str) for r in results))
    seen = figures.seen_buckets.get(identity)
    if seen is None:
        figures.seen_buckets[identity] = (content, where)
        return True
    if seen[0] == content:
        return False
    raise ReportFormatError(
        f"{where}: the {kind} bucket of {day} (start {start!r}) is also in {seen[1]}, with different results;"
        " pass only one of the two reports"
    )


def _bucket_day(bucket: dict[str, Any], where: str) -> str:
    if "start_time" in bucket:
        value = bucket["start_time"]
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ReportFormatError(f"{where}.start_time: expected Unix seconds, got {value!r}")
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc).date().isoformat()
        except (OverflowError, OSError, ValueError):
            raise ReportFormatError(f"{where}.start_time: Unix seconds out of range, got {value!r}") from None
    if "starting_at" in bucket:
        value = bucket["starting_at"]
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return moment.astimezone(timezone.utc).date().isoformat()
        except (OverflowError, ValueError):
            raise ReportFormatError(f"{where}.starting_at: expected an RFC 3339 time, got {value!r}") from None
    raise ReportFormatError(f"{where}: bucket has no start_time or starting_at")


def _count(result: dict[str, Any], name: str, at: str) -> int:
    value: Any = result
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return 0
    # The range check comes first: it also refuses NaN and infinities, which int() cannot take.
    whole = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= INT64_MAX
    if not whole or value != int(value):
        raise ReportFormatError(f"{at}.{name}: expected a non-negative whole number, got {value!r}")
    return int(value)


def _model(result: dict[str, Any], at: str) -> str:
    model = result.get("model")
    if model is None:
        return ANY_MODEL
    if not isinstance(model, str) or not model:
        raise ReportFormatError(f"{at}.model: expected a model name, got {model!r}")
    return model


def _openai_usage_kind(result: dict[str, Any], at: str) -> str:
    """completions or embeddings, from the result's `object`; completions when it has none (the
    report `--provider openai` fetches, and the one a hand-made file most likely copies)."""
    kind = result.get("object")
    if kind is None:
        return "completions"
    name = str(kind).removeprefix("organization.usage.").removesuffix(".result")
    if name not in _OPENAI_USAGE_OPERATIONS:
        raise ReportFormatError(
            f"{at}.object: {kind!r} is not a usage report the ledger can be compared with"
            f" (use the {' or '.join(_OPENAI_USAGE_OPERATIONS)} usage report)"
        )
    return name


def _openai_usage(result: dict[str, Any], day: str, at: str, figures: ProviderFigures) -> None:
    figures.set_provider("openai", at)
    kind = _openai_usage_kind(result, at)
    operations = _OPENAI_USAGE_OPERATIONS[kind]
    key = (day, _model(result, at))
    figures.input_tokens[key] += _count(result, "input_tokens", at)
    figures.cover(operations, "input_tokens")
    if kind == "completions":  # embeddings have no output
        figures.output_tokens[key] += _count(result, "output_tokens", at)
        figures.cover(operations, "output_tokens")
    if "num_model_requests" in result:
        figures.requests[key] += _count(result, "num_model_requests", at)
        figures.cover(operations, "requests")


def _anthropic_usage(result: dict[str, Any], day: str, at: str, figures: ProviderFigures) -> None:
    figures.set_provider("anthropic", at)
    key = (day, _model(result, at))
    # The ledger's input_tokens include cache reads and writes (semconv meaning).
    figures.input_tokens[key] += (
        _count(result, "uncached_input_tokens", at)
        + _count(result, "cache_read_input_tokens", at)
        + _count(result, "cache_creation.ephemeral_5m_input_tokens", at)
        + _count(result, "cache_creation.ephemeral_1h_input_tokens", at)
    )
    figures.output_tokens[key] += _count(result, "output_tokens", at)
    figures.cover(_ANTHROPIC_USAGE_OPERATIONS, "input_tokens", "output_tokens")


def _openai_cost(result: dict[str, Any], day: str, at: str, figures: ProviderFigures) -> None:
    figures.set_provider("openai", at)
    amount = result["amount"]
    currency = str(amount.get("currency") or "usd").lower()
    if currency != "usd":
        raise ReportFormatError(f"{at}.amount.currency: only USD is supported, got {currency!r}")
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ReportFormatError(f"{at}.amount.value: expected a number, got {value!r}")
    usd = _decimal(value, f"{at}.amount.value")
    line_item = result.get("line_item")
    if line_item is not None and not isinstance(line_item, str):
        raise ReportFormatError(f"{at}.line_item: expected text, got {line_item!r}")
    model = line_item.rsplit(", ", 1)[0] if line_item else ANY_MODEL
    figures.cost_usd[(day, model)] += usd
    figures.cover(None, "cost_usd")


def _anthropic_cost(result: dict[str, Any], day: str, at: str, figures: ProviderFigures) -> None:
    figures.set_provider("anthropic", at)
    currency = str(result.get("currency") or "USD").upper()
    if currency != "USD":
        raise ReportFormatError(f"{at}.currency: only USD is supported, got {currency!r}")
    cents = _decimal(result.get("amount"), f"{at}.amount")
    cost_type = result.get("cost_type")
    if cost_type is None or cost_type == "tokens":
        key = (day, _model(result, at))
    else:
        # web_search, code_execution...: billed per use (model null), never priced by the ledger.
        if not isinstance(cost_type, str) or not cost_type or cost_type == ANY_MODEL:
            raise ReportFormatError(f"{at}.cost_type: expected a cost type, got {cost_type!r}")
        key = (day, cost_type)
        figures.not_models.add(cost_type)
    figures.cost_usd[key] += cents / 100
    figures.cover(None, "cost_usd")


def _decimal(value: Any, at: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ReportFormatError(f"{at}: expected a decimal amount, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ReportFormatError(f"{at}: expected a decimal amount, got {value!r}") from None
    if not number.is_finite():
        raise ReportFormatError(f"{at}: expected a finite amount, got {value!r}")
    return number


# --- fetching ----------------------------------------------------------------------------------------
def fetch_reports(
    provider: str,
    since_day: date,
    until_day: date,
    figures: ProviderFigures,
    *,
    base_url: str | None = None,
    admin_key: str | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Fetch the provider's usage and cost reports for days [since, until) into `figures`. Each
    report counts as covering its measures for the whole range, results or not."""
    if provider not in PROVIDERS:
        raise FetchError(f"unknown provider {provider!r}; choose from {', '.join(PROVIDERS)}")
    key = admin_key or os.environ.get(ADMIN_KEY_ENV[provider], "")
    if not key:
        raise FetchError(f"{ADMIN_KEY_ENV[provider]} is not set (an admin key is needed to fetch reports)")
    root = (base_url or DEFAULT_BASE_URL[provider]).rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    days = max(1, (until_day - since_day).days)
    usage_covers: tuple[Operations, tuple[str, ...]]
    if provider == "openai":
        start = int(datetime.combine(since_day, datetime.min.time(), tzinfo=timezone.utc).timestamp())
        end = start + days * 86400
        headers = {"Authorization": f"Bearer {key}"}
        span = [("start_time", str(start)), ("end_time", str(end)), ("bucket_width", "1d")]
        usage_url = f"{root}/v1/organization/usage/completions"
        cost_url = f"{root}/v1/organization/costs"
        usage_query = [*span, ("group_by[]", "model"), ("limit", str(min(days, 31)))]
        cost_query = [*span, ("group_by[]", "line_item"), ("limit", str(min(days, 180)))]
        usage_covers = (_OPENAI_USAGE_OPERATIONS["completions"], ("requests", "input_tokens", "output_tokens"))
    else:
        start_text = f"{since_day.isoformat()}T00:00:00Z"
        end_text = f"{(since_day + timedelta(days=days)).isoformat()}T00:00:00Z"
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        span = [("starting_at", start_text), ("ending_at", end_text), ("bucket_width", "1d")]
        usage_url = f"{root}/v1/organizations/usage_report/messages"
        cost_url = f"{root}/v1/organizations/cost_report"
        usage_query = [*span, ("group_by[]", "model"), ("limit", str(min(days, 31)))]
        cost_query = [*span, ("group_by[]", "description"), ("limit", str(min(days, 31)))]
        usage_covers = (_ANTHROPIC_USAGE_OPERATIONS, ("input_tokens", "output_tokens"))
    cost_covers: tuple[Operations, tuple[str, ...]] = (None, ("cost_usd",))
    for url, query, (operations, measures) in (
        (usage_url, usage_query, usage_covers),
        (cost_url, cost_query, cost_covers),
    ):
        for page in _pages(url, query, headers, timeout_s):
            add_report(page, url, figures)
        # The endpoint says what the report covers even when its buckets hold no results: an empty
        # report is the provider saying 0 for every day asked, to compare with the ledger's figures.
        figures.set_provider(provider, url)
        figures.cover(operations, *measures)


def _pages(url: str, query: list[tuple[str, str]], headers: dict[str, str], timeout_s: float) -> Iterator[Any]:
    page_token: str | None = None
    for _ in range(_MAX_PAGES):
        params = [*query, ("page", page_token)] if page_token else query
        full = f"{url}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(full, headers={**headers, "accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()
            raise FetchError(f"GET {url}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"GET {url}: {reason}") from None
        page = _parse_json(body, url)
        yield page
        if not isinstance(page, dict) or not page.get("has_more") or not page.get("next_page"):
            return
        page_token = str(page["next_page"])
    raise FetchError(f"GET {url}: more than {_MAX_PAGES} pages")
