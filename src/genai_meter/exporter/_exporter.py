"""Cost on the spans other instrumentations make, added on their way to the real exporter.

A span exporter is the one place every finished span passes whatever made it, so pricing there serves
the official OTel GenAI instrumentations and OpenLLMetry without genai-meter patching anything.
`ReadableSpan` is immutable: a priced span is a copy with the cost attributes merged in (events,
links and dropped counts kept). Spans without GenAI usage, and genai-meter's own spans (already
priced, or flagged unpriced), pass through as the same objects.

Nothing here may cost the app its traces: a span that cannot be priced is handed on flagged
unpriced (the others in its batch are priced as usual), and a delegate that cannot be built is
replaced by the default one, or by one that drops spans, with the fault logged and counted, instead
of raising from the constructor the OTel launcher calls (which would stop every instrumentation).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanLimits
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util._importlib_metadata import entry_points

from .. import _runtime, names
from .._config import Config, load_config_leniently
from .._faults import record_fault
from ..instrumentation.openai._request import provider_for_host
from ..pricing import PriceBook
from ._metered import is_call_span
from ._read import SpanUsage, server_of, span_usage

logger = logging.getLogger("genai_meter")

DELEGATE_ENV = "GENAI_METER_EXPORTER_DELEGATE"
ENTRY_POINT_GROUP = "opentelemetry_traces_exporter"
OWN_NAME = "genai_meter"
# Instrumentation scopes of SDKs that trace themselves; inside a call genai-meter metered, their span
# is a second record of the same call and is not priced again.
SDK_SELF_TRACING_SCOPES = frozenset(("com.anthropic.sdk.python",))
# Attributes that mark a span as genai-meter's own.
_OWN_MARKS = (names.COST_USD, names.UNPRICED, names.OUTCOME)


_PROTOCOL_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_OTLP_BY_PROTOCOL = {"": "otlp_proto_grpc", "grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def _otlp_protocol() -> tuple[str, str]:
    """(variable, value) of the OTLP protocol setting for traces, as the OTel SDK reads it."""
    for variable in _PROTOCOL_ENVS:
        value = os.environ.get(variable)
        if value:
            return variable, value.strip()
    return _PROTOCOL_ENVS[-1], ""


def _otlp_name(name: str) -> str:
    """`otlp` picks gRPC or HTTP by the OTLP protocol variables, as the OTel SDK's own configurator does."""
    if name != "otlp":
        return name
    variable, protocol = _otlp_protocol()
    found = _OTLP_BY_PROTOCOL.get(protocol)
    if found is None:
        raise ValueError(
            f"{DELEGATE_ENV}={name!r}: {variable}={protocol!r} is not a protocol of the OTLP span exporters "
            "(grpc or http/protobuf)"
        )
    return found


def _fallback_otlp_name() -> str:
    """The OTLP exporter to use when the configured delegate cannot be built: the one `otlp` names, or
    for an unsupported protocol the nearest (HTTP for `http/json`, else gRPC)."""
    _variable, protocol = _otlp_protocol()
    return _OTLP_BY_PROTOCOL.get(protocol) or ("otlp_proto_http" if protocol.startswith("http") else "otlp_proto_grpc")


def _configuration() -> Config | None:
    """genai-meter's configuration as the exporter, built by the launcher, reads it: a wrong key falls
    back alone (logged and counted) and the rest stays in force, as for the instrumentors."""
    try:
        config, errors = load_config_leniently()
    except Exception as error:
        record_fault("exporter.config", error)
        return None
    for mistake in errors:
        record_fault("exporter.config", mistake)
    return config


def _configured_delegate_name(configuration: Callable[[], Config | None]) -> str:
    name = os.environ.get(DELEGATE_ENV, "").strip()
    if not name:
        config = configuration()
        name = str(config.exporter_delegate or "") if config is not None else ""
    return name or "otlp"


def load_delegate(name: str) -> SpanExporter:
    """The span exporter registered as `name` in `opentelemetry_traces_exporter` (what OTEL_TRACES_EXPORTER
    accepts: otlp, otlp_proto_http, otlp_proto_grpc, console, zipkin, ...)."""
    name = name.strip().lower()
    if name == OWN_NAME:
        raise ValueError(f"{DELEGATE_ENV}: {OWN_NAME!r} cannot wrap itself; name the real exporter (e.g. otlp)")
    wanted = _otlp_name(name)
    found = list(entry_points(group=ENTRY_POINT_GROUP, name=wanted))
    if not found:
        known = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} - {OWN_NAME})
        raise ValueError(
            f"{DELEGATE_ENV}: no span exporter named {name!r} is installed (installed: {', '.join(known)})"
        )
    exporter_class = found[0].load()
    exporter: SpanExporter = exporter_class()
    return exporter


class _DroppingExporter(SpanExporter):
    """Stands in when no delegate could be built: the spans are dropped (the fault was logged)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _configured_delegate(configuration: Callable[[], Config | None]) -> SpanExporter:
    """The delegate the configuration names; when it cannot be built (an unknown name, an OTLP
    protocol the exporters lack), the default OTLP exporter, and failing that a dropping one. Never
    raises: the OTel launcher builds this exporter, and an exception there stops all instrumentation."""
    name = _configured_delegate_name(configuration)
    try:
        return load_delegate(name)
    except Exception as error:
        fallback = _fallback_otlp_name()
        record_fault(
            "exporter.delegate",
            ValueError(f"{error}; spans are exported by {fallback!r} instead"),
        )
    try:
        return load_delegate(fallback)
    except Exception as error:
        record_fault(
            "exporter.delegate_fallback",
            ValueError(f"the default exporter {fallback!r} cannot be built either ({error}); spans are dropped"),
        )
    return _DroppingExporter()


def _attribute_limit(span: ReadableSpan) -> int | None:
    """The attribute count limit `span` was made under (None: unlimited). An SDK span keeps its
    `SpanLimits`; a span that does not (made elsewhere) is given the one the environment sets."""
    limits = getattr(span, "_limits", None)
    if not isinstance(limits, SpanLimits):
        limits = _environment_limits()
    limit = limits.max_span_attributes
    return limit if isinstance(limit, int) else None


@functools.cache
def _environment_limits() -> SpanLimits:
    return SpanLimits()


class _PricedSpan(ReadableSpan):
    """A copy of a finished span with attributes added (`added`, which replace any of the same key).

    The copy holds no more attributes than the span's count limit (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`,
    else `OTEL_ATTRIBUTE_COUNT_LIMIT`, else 128: the limit the span was made under): past it, the
    oldest of the original's are dropped, as the SDK itself drops them when a live span gets one more
    than its limit, and counted in `dropped_attributes` with what the original dropped. So the cost
    is always kept, and a receiver that enforces the limit gets a span within it."""

    def __init__(self, span: ReadableSpan, added: Mapping[str, Any]) -> None:
        original = span.attributes or {}
        limit = _attribute_limit(span)
        attributes = {key: value for key, value in original.items() if key not in added}
        attributes.update(added)
        excess = len(attributes) - limit if limit is not None else 0
        if excess > 0:
            for key in list(itertools.islice(attributes, excess)):
                del attributes[key]
        super().__init__(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
            # deprecated, but exporters still read it (an encoder's `instrumentation_info.name` on None
            # raised and lost the whole batch): the original's, read without its deprecation warning
            instrumentation_info=getattr(span, "_instrumentation_info", None),
        )
        self._original = span
        self._dropped_here = max(excess, 0)

    @property
    def dropped_attributes(self) -> int:
        return self._original.dropped_attributes + self._dropped_here

    @property
    def dropped_events(self) -> int:
        return self._original.dropped_events

    @property
    def dropped_links(self) -> int:
        return self._original.dropped_links


class CostSpanExporter(SpanExporter):
    """Adds genai-meter's cost attributes to every span carrying GenAI usage, then hands the spans to the
    real exporter (registered as `genai_meter`: `OTEL_TRACES_EXPORTER=genai_meter`).

    `delegate`: the real exporter; by default the one named by `GENAI_METER_EXPORTER_DELEGATE`
    (`otlp` when unset). `prices`: the price book; by default the bundled prices plus the configured
    overrides file. `emit_semconv_cost`: also write the draft `gen_ai.usage.cost.*` attributes
    (default: the configuration's `emit_semconv_cost`).
    """

    def __init__(
        self,
        delegate: SpanExporter | None = None,
        *,
        prices: PriceBook | None = None,
        emit_semconv_cost: bool | None = None,
    ) -> None:
        self._config: Config | None = None
        self._config_read = False
        self._delegate = delegate if delegate is not None else _configured_delegate(self._configuration)
        self._prices = prices
        self._emit_semconv = emit_semconv_cost
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()

    @property
    def delegate(self) -> SpanExporter:
        return self._delegate

    def _configuration(self) -> Config | None:
        """The configuration, read (and its mistakes reported) once per exporter."""
        if not self._config_read:
            self._config = _configuration()
            self._config_read = True
        return self._config

    def _settings(self) -> tuple[PriceBook, bool]:
        prices, emit = self._prices, self._emit_semconv
        if prices is not None and emit is not None:
            return prices, emit
        live = _runtime._runtime
        if live is not None:
            # The app's own configuration, `configure()` included: the prices and overrides its own
            # spans are priced with, so every span of one call carries one price.
            return (prices or live.prices), (emit if emit is not None else live.config.emit_semconv_cost)
        with self._lock:
            if self._prices is None or self._emit_semconv is None:
                pricing_file, semconv = None, False
                config = self._configuration()
                if config is not None:
                    pricing_file, semconv = config.pricing_file, config.emit_semconv_cost
                if self._prices is None:
                    try:
                        self._prices = PriceBook.load(pricing_file)
                    except Exception as error:
                        record_fault("exporter.pricing", error)
                        self._prices = PriceBook.load()
                if self._emit_semconv is None:
                    self._emit_semconv = semconv
            return self._prices, bool(self._emit_semconv)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            prices, emit = self._settings()
        except Exception as fault:
            record_fault("exporter.price", fault)
            return self._delegate.export(spans)
        return self._delegate.export([self._priced_or_flagged(span, prices, emit) for span in spans])

    def _priced_or_flagged(self, span: ReadableSpan, prices: PriceBook, emit_semconv: bool) -> ReadableSpan:
        """One span priced; one that cannot be is handed on flagged unpriced, and the rest of its batch
        is priced as usual."""
        try:
            return self._priced(span, prices, emit_semconv)
        except Exception as fault:
            record_fault("exporter.price", fault)
        try:
            return _PricedSpan(span, {names.UNPRICED: True})
        except Exception as fault:
            record_fault("exporter.flag", fault)
            return span

    def _priced(self, span: ReadableSpan, prices: PriceBook, emit_semconv: bool) -> ReadableSpan:
        attributes = span.attributes
        if not attributes or any(mark in attributes for mark in _OWN_MARKS):
            return span
        found = span_usage(attributes)
        if found is None:
            return span
        scope = span.instrumentation_scope
        parent = span.parent
        if (
            scope is not None
            and scope.name in SDK_SELF_TRACING_SCOPES
            and parent is not None
            and is_call_span(parent.span_id)
        ):
            return span
        if found.provider == "openai":  # (peers name every OpenAI-SDK client's server openai)
            found = self._compatible_provider(found, attributes)
        added = self._cost_attributes(found, span, prices, emit_semconv)
        if found.usage.suspect:  # a count was there but unreadable: priced as 0, and said so
            added[names.USAGE_SUSPECT] = True
        return _PricedSpan(span, added)

    def _compatible_provider(self, found: SpanUsage, attributes: Mapping[str, Any]) -> SpanUsage:
        """The OpenAI-compatible provider the span's server is (Groq, OpenRouter, a local vLLM named in
        `provider_hosts`, ...), as genai-meter's own instrumentation names it by host."""
        host, port = server_of(attributes)
        if host is None:
            return found
        live = _runtime._runtime
        config = live.config if live is not None else self._configuration()
        hosts = config.provider_hosts if config is not None else {}
        provider = provider_for_host(host, port, False, hosts)
        return found if provider == found.provider else dataclasses.replace(found, provider=provider)

    def _cost_attributes(self, found: Any, span: ReadableSpan, prices: PriceBook, emit_semconv: bool) -> dict[str, Any]:
        pricing = prices.resolve(found.provider, found.model)
        if pricing is None and found.request_model and found.request_model != found.model:
            pricing = prices.resolve(found.provider, found.request_model)
        if pricing is None:
            key = (found.provider, found.model)
            if key not in self._warned and len(self._warned) < 1000:
                self._warned.add(key)
                logger.warning(
                    "genai-meter exporter: model %r of provider %r is not in the pricing map; its spans are "
                    "flagged %s instead of priced",
                    found.model,
                    found.provider,
                    names.UNPRICED,
                )
            return {names.UNPRICED: True}
        at = (span.start_time or 0) / 1e9
        cost = pricing.cost(found.usage, at, found.service_tier)
        attrs: dict[str, Any] = {
            names.COST_USD: cost.total_usd,
            names.COST_INPUT_USD: cost.input_usd,
            names.COST_OUTPUT_USD: cost.output_usd,
            names.COST_SOURCE: cost.source,
            names.PRICING_VERSION: cost.pricing_version,
            names.PRICED_MODEL: cost.model,
        }
        if cost.cache_read_usd:
            attrs[names.COST_CACHE_READ_USD] = cost.cache_read_usd
        if cost.cache_write_usd:
            attrs[names.COST_CACHE_WRITE_USD] = cost.cache_write_usd
        if emit_semconv:
            attrs[names.SEMCONV_COST_AMOUNT] = cost.total_usd
            attrs[names.SEMCONV_COST_CURRENCY] = "USD"
            attrs[names.SEMCONV_COST_SOURCE] = cost.source
        return attrs

    def shutdown(self) -> None:
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._delegate.force_flush(timeout_millis)
