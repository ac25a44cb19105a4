"""The life of one metered call, shared by every instrumentor: begin (attribution, span, budget
check), then finish exactly once (usage, price, span attributes, metrics, budget settle, ledger).

Instrumentors only translate their SDK's request and response into these calls; everything that
must be the same across providers lives here. `finish` is idempotent because a stream can end in
several ways at once (exhausted, closed, garbage-collected) and must be counted once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypedDict

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from . import names
from ._attribution import Attribution, current_attribution
from ._faults import record_fault
from ._metrics import LabelKey
from ._record import CallRecord, new_request_id
from ._runtime import Runtime
from ._sdk_spans import end_span
from ._span_attributes import add_span_attributes, is_plain_value, start_client_span
from ._span_export import endings_deferrable
from ._usage import Usage, estimated_usage
from .pricing import Cost, price_ids

if TYPE_CHECKING:
    from typing_extensions import Required, Unpack

    from .budgets import Reservation, ThresholdEvent

_SUSPECT_USAGE = ValueError(
    "a provider response carried usage fields (or a reported cost) that were missing, null, negative, "
    "absurdly large or not numbers; such counts were taken as 0 and such a cost was not used, the call "
    "being priced from its tokens (the call's span says genai_meter.usage.suspect)"
)
_MISSING_USAGE = ValueError(
    "a provider response carried no usage at all; its tokens were estimated from the text lengths "
    "(the call's span says genai_meter.usage.missing and genai_meter.usage.estimated)"
)
_static_span_attrs: dict[tuple[str, str, str, str, bool], dict[str, Any]] = {}


def _span_attributes(provider: str, operation: str, model: str, server: str, stream: bool) -> dict[str, Any]:
    key = (provider, operation, model, server, stream)
    attrs = _static_span_attrs.get(key)
    if attrs is None:
        attrs = {
            names.OPERATION_NAME: operation,
            names.PROVIDER_NAME: provider,
            names.REQUEST_MODEL: model,
            names.REQUEST_STREAM: stream,
        }
        if server:
            attrs[names.SERVER_ADDRESS] = server
        if len(_static_span_attrs) < 10_000:
            _static_span_attrs[key] = attrs
    return attrs


def _add_threshold_events(span: Span, events: Iterable[ThresholdEvent]) -> None:
    for event in events:
        span.add_event(
            names.BUDGET_EVENT,
            {
                names.BUDGET_NAME_ATTR: event.budget,
                names.BUDGET_SCOPE_ATTR: event.scope_value,
                names.BUDGET_THRESHOLD_ATTR: event.threshold_percent,
            },
        )


class Outcome(TypedDict, total=False):
    """What a call ends with (`Call.finish`'s keyword arguments; see its doc)."""

    usage: Required[Usage | None]
    response_model: str | None
    response_id: str | None
    error: BaseException | None
    provider_cost_usd: float | None
    finish_reasons: tuple[str, ...] | None
    output_messages: str | None
    output_chars: int | None
    service_tier: str | None


class Call:
    """One call in flight. Created by `begin_call`; ended by `finish` or `fail` (once)."""

    __slots__ = (
        "attribution",
        "context",
        "deferrable",
        "done",
        "operation",
        "prompt_chars",
        "provider",
        "request_model",
        "reservation",
        "runtime",
        "server",
        "service_tier_key",
        "span",
        "start_ns",
        "start_time",
        "store",
        "stream",
        "timed",
    )

    def __init__(
        self,
        runtime: Runtime,
        provider: str,
        operation: str,
        request_model: str,
        server: str,
        stream: bool,
        attribution: Attribution,
        prompt_chars: Callable[[], int] | None = None,
    ) -> None:
        self.runtime = runtime
        self.prompt_chars = prompt_chars
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.server = server
        self.stream = stream
        self.attribution = attribution
        self.reservation: Reservation | None = None
        self.done = False
        # False for a call made before genai-meter saw it (a batch's result, read later): no
        # duration is recorded, it would be the time it took to read it
        self.timed = True
        # The span attribute naming the service tier served, where the provider's API has one
        # (`openai.response.service_tier`); set by the instrumentor.
        self.service_tier_key: str | None = None
        static = _static_span_attrs.get((provider, operation, request_model, server, stream))
        attrs = (
            static if static is not None else _span_attributes(provider, operation, request_model, server, stream)
        ).copy()  # (`copy`, not `dict(...)`: a method call, not a class call)
        if attribution.user is not None:
            attrs[names.USER_ID] = attribution.user
        if attribution.tenant is not None:
            attrs[names.TENANT_ID] = attribution.tenant
        if attribution.feature is not None:
            attrs[names.FEATURE] = attribution.feature
        start_ns = time.time_ns()  # one wall-clock read for the span and the price/ledger time
        self.start_time = start_ns / 1e9
        self.start_ns = time.perf_counter_ns()
        # The app's context now: the span's parent, and what `activate` makes it current in. Handed to
        # the SDK, it saves the SDK's own lookups of it (the tracer's, its sampler's) and `activate`'s.
        self.context: otel_context.Context | None = otel_context.get_current()
        # (the span's attribute store, where its start attributes went straight into it: see `_span_attributes`)
        self.span: Span
        self.span, self.store = start_client_span(
            runtime.tracer, f"{operation} {request_model}", attrs, start_ns, self.context
        )
        # whether `finish` may leave the recording to a drain off the app's thread (`_span_export`)
        self.deferrable = endings_deferrable(runtime.tracer)

    def activate(self) -> object:
        """Make the span current for the SDK's own HTTP call (child spans nest); detach with `deactivate`."""
        # (the context is let go of here: a call held open, a stream or a background response, would
        # otherwise keep the app's parent span and baggage alive with it)
        context, self.context = self.context, None
        return otel_context.attach(trace.set_span_in_context(self.span, context))

    @staticmethod
    def deactivate(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    def finish(self, **outcome: Unpack[Outcome]) -> None:
        """Record the outcome of the call; never raises.

        `output_chars` (the response text's length) is what a reader of a whole response passes when
        the response carried no usage: the call's tokens are then estimated from it and the prompt,
        and marked missing. Without it, `usage=None` records no tokens (genai-meter's own fault, or
        an error before any response). `service_tier` is the tier the provider says it served the
        call at (flex and priority are priced apart)."""
        if self.done:
            return
        self.done = True
        end_ns = time.time_ns()
        duration_s = (time.perf_counter_ns() - self.start_ns) / 1e9
        try:
            missing = self._estimate_if_missing(outcome)
        except Exception as fault:
            record_fault("call.finish", fault)
            self.span.end(end_ns)
            return
        self._run_or_defer(functools.partial(self._end, outcome, missing, duration_s, end_ns))

    def finish_reading(self, read: Callable[[], Outcome]) -> None:
        """`finish(**read())`, with `read` called where the call's ending is made: off the app's
        thread where it may be. For what only genai-meter holds and nothing changes once the call
        ended (a stream meter's state), so that reading it later reads the same."""
        if self.done:
            return
        self.done = True
        end_ns = time.time_ns()
        duration_s = (time.perf_counter_ns() - self.start_ns) / 1e9
        # (a partial, made in C: a closure over four cells costs more to make)
        self._run_or_defer(functools.partial(self._end_reading, read, duration_s, end_ns))

    def _end_reading(self, read: Callable[[], Outcome], duration_s: float, end_ns: int) -> None:
        try:
            outcome = read()
            missing = self._estimate_if_missing(outcome)
        except Exception as fault:
            record_fault("call.finish", fault)
            outcome, missing = {"usage": None}, False
        self._end(outcome, missing, duration_s, end_ns)

    def _run_or_defer(self, ending: Callable[[], None]) -> None:
        """Queue the call's ending for the drain where it may wait, else (or when it cannot be
        queued: nothing was) make it now. A budget's settle is seen by the next call's check: a
        call holding a reservation always ends now."""
        if self.deferrable and self.reservation is None:
            try:
                self.runtime.metrics.deferred.defer(ending)
                return
            except Exception as fault:
                record_fault("call.finish", fault)
        ending()

    def _estimate_if_missing(self, outcome: Outcome) -> bool:
        """Put an estimate in `outcome` where a whole response carried no usage (see `finish`);
        whether it did. Made at once: it measures the app's prompt, which the app may change next."""
        missing = (
            outcome["usage"] is None and outcome.get("error") is None and outcome.get("output_chars") is not None
        )
        if missing:
            outcome["usage"] = self._estimate_missing_usage(outcome.get("output_chars") or 0)
        self.prompt_chars = None  # (it holds the request's prompt)
        return missing

    def _end(self, outcome: Outcome, usage_missing: bool, duration_s: float, end_ns: int) -> None:
        """Record the ended call and end its span, on the app's thread or a later drain; never raises."""
        try:
            self._record(outcome, usage_missing, duration_s)
        except Exception as fault:
            record_fault("call.finish", fault)
        finally:
            end_span(self.span, end_ns)

    def _record(self, ended: Outcome, usage_missing: bool, duration_s: float) -> None:
        usage = ended["usage"]
        response_model = ended.get("response_model")
        response_id = ended.get("response_id")
        error = ended.get("error")
        error_type = type(error).__qualname__ if error is not None else None
        provider_cost_usd = ended.get("provider_cost_usd")
        finish_reasons = ended.get("finish_reasons")
        output_messages = ended.get("output_messages")
        service_tier = ended.get("service_tier")
        runtime = self.runtime
        span = self.span
        # Read from the provider's answer: only text is a model or an id (a number would become a
        # span attribute of another type and a metric label no dashboard matches).
        if type(response_model) is not str:
            response_model = None
        if type(response_id) is not str:
            response_id = None
        model_for_price, other_model = price_ids(self.provider, self.request_model, response_model)

        cost: Cost | None = None
        priced = True
        if usage is not None:
            if provider_cost_usd is not None:
                from .pricing import provider_cost

                cost = provider_cost(provider_cost_usd, runtime.prices.version, model_for_price)
            else:
                pricing = runtime.prices.resolve(self.provider, model_for_price)
                if pricing is None and other_model is not None:
                    pricing = runtime.prices.resolve(self.provider, other_model)
                if pricing is None:
                    priced = False
                    runtime.warn_unpriced(self.provider, model_for_price)
                else:
                    cost = pricing.cost(usage, self.start_time, service_tier)

        if error_type is not None:
            outcome = names.OUTCOME_ERROR
        elif not priced:
            outcome = names.OUTCOME_UNPRICED
        else:
            outcome = names.OUTCOME_OK

        attrs: dict[str, Any] = {names.OUTCOME: outcome}
        if response_model:
            attrs[names.RESPONSE_MODEL] = response_model
        if response_id:
            attrs[names.RESPONSE_ID] = response_id
        if finish_reasons:
            attrs[names.RESPONSE_FINISH_REASONS] = finish_reasons
        if usage is not None:
            attrs[names.USAGE_INPUT_TOKENS] = usage.input_tokens
            attrs[names.USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_tokens:
                attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.cache_write_tokens:
                attrs[names.USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                attrs[names.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            if usage.estimated:
                attrs[names.USAGE_ESTIMATED] = True
            if usage.suspect:
                attrs[names.USAGE_SUSPECT] = True
                record_fault("usage.suspect", _SUSPECT_USAGE)
            if usage_missing:
                attrs[names.USAGE_MISSING] = True
                record_fault("usage.missing", _MISSING_USAGE)
        if cost is not None:
            attrs[names.COST_USD] = cost.total_usd
            attrs[names.COST_INPUT_USD] = cost.input_usd
            attrs[names.COST_OUTPUT_USD] = cost.output_usd
            if cost.cache_read_usd:
                attrs[names.COST_CACHE_READ_USD] = cost.cache_read_usd
            if cost.cache_write_usd:
                attrs[names.COST_CACHE_WRITE_USD] = cost.cache_write_usd
            source = names.COST_SOURCE_ESTIMATED if usage is not None and usage.estimated else cost.source
            attrs[names.COST_SOURCE] = source
            attrs[names.PRICING_VERSION] = cost.pricing_version
            attrs[names.PRICED_MODEL] = cost.model
            if runtime.config.emit_semconv_cost:
                attrs[names.SEMCONV_COST_AMOUNT] = cost.total_usd
                attrs[names.SEMCONV_COST_CURRENCY] = "USD"
                attrs[names.SEMCONV_COST_SOURCE] = source
        elif not priced:
            attrs[names.UNPRICED] = True
        if error_type is not None:
            attrs[names.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        # Every value above is plain (str, bool, int, float) by construction, bar the finish reasons;
        # those and the two below come from the instrumentor: only they are checked (`plain`).
        plain = is_plain_value(finish_reasons) if finish_reasons else True
        if service_tier is not None and self.service_tier_key is not None:
            attrs[self.service_tier_key] = service_tier
            plain = plain and is_plain_value(service_tier)
        if output_messages is not None and runtime.config.capture_content:
            attrs[names.OUTPUT_MESSAGES] = output_messages
            plain = plain and is_plain_value(output_messages)
        add_span_attributes(span, attrs, plain, self.store)

        metrics = runtime.metrics
        metrics.record_call(
            self._label_key(),
            usage,
            cost.total_usd if cost is not None else None,
            outcome,
            metrics.histogram_attributes(
                self.operation, self.provider, self.request_model, response_model or "", self.server
            ),
            duration_s if self.timed else None,
            error_type,
        )

        guard = runtime.guard
        if guard is not None and self.reservation is not None:
            try:
                tokens = usage.total_tokens if usage is not None else 0
                events = guard.settle(self.reservation, cost.total_usd if cost is not None else None, tokens)
            except Exception as fault:
                record_fault("budget.settle", fault)
            else:
                _add_threshold_events(span, events)

        ledger = runtime.ledger
        if ledger is not None:
            ledger.submit(
                self._ledger_record(
                    response_model=response_model,
                    response_id=response_id,
                    input_tokens=usage.input_tokens if usage else 0,
                    output_tokens=usage.output_tokens if usage else 0,
                    cache_read_tokens=usage.cache_read_tokens if usage else 0,
                    cache_write_tokens=usage.cache_write_tokens if usage else 0,
                    reasoning_tokens=usage.reasoning_tokens if usage else 0,
                    usage_estimated=usage.estimated if usage else False,
                    cost_input_usd=cost.input_usd if cost else None,
                    cost_cache_read_usd=cost.cache_read_usd if cost else None,
                    cost_cache_write_usd=cost.cache_write_usd if cost else None,
                    cost_output_usd=cost.output_usd if cost else None,
                    cost_usd=cost.total_usd if cost else None,
                    cost_source=attrs.get(names.COST_SOURCE),
                    pricing_version=cost.pricing_version if cost else None,
                    latency_s=duration_s if self.timed else 0.0,
                    outcome=outcome,
                    error_type=error_type,
                    service_tier=service_tier if type(service_tier) is str else None,
                )
            )

    def _estimate_missing_usage(self, output_chars: int) -> Usage:
        """Tokens of a successful response that reported none: estimated from the text, as for a
        stream without usage, so the call is priced (marked estimated) instead of recorded at $0."""
        prompt_chars = 0
        if self.prompt_chars is not None:
            try:
                prompt_chars = self.prompt_chars()
            except Exception as fault:
                record_fault("call.prompt_chars", fault)
        return estimated_usage(prompt_chars, output_chars)

    def _label_key(self) -> LabelKey:
        attribution = self.attribution
        return self.runtime.metrics.label_key(
            self.provider, self.request_model, self.operation, attribution.feature, attribution.tenant, attribution.user
        )

    def _ledger_record(self, **outcome: Any) -> CallRecord:
        """The ledger row of this call: what every row has, plus the outcome's own fields."""
        attribution = self.attribution
        span_context = self.span.get_span_context()
        return CallRecord(
            time=self.start_time,
            provider=self.provider,
            operation=self.operation,
            request_model=self.request_model,
            request_id=new_request_id(),
            user=attribution.user,
            tenant=attribution.tenant,
            feature=attribution.feature,
            stream=self.stream,
            trace_id=format(span_context.trace_id, "032x") if span_context.is_valid else None,
            span_id=format(span_context.span_id, "016x") if span_context.is_valid else None,
            metadata=dict(attribution.metadata),
            **outcome,
        )

    def block(self, error: Exception) -> None:
        """The budget guard stopped the call before it was sent."""
        self.done = True
        span = self.span
        try:
            runtime = self.runtime
            span.set_attributes(
                {names.OUTCOME: names.OUTCOME_BLOCKED, names.ERROR_TYPE: type(error).__qualname__}
            )
            span.add_event(
                names.BUDGET_BLOCKED_EVENT,
                {
                    names.BUDGET_NAME_ATTR: str(getattr(error, "budget", "")),
                    names.BUDGET_SCOPE_ATTR: str(getattr(error, "scope_value", "")),
                },
            )
            _add_threshold_events(span, getattr(error, "events", None) or ())
            span.set_status(Status(StatusCode.ERROR, "blocked by budget"))
            runtime.metrics.record_blocked(self._label_key())
            if runtime.ledger is not None:
                runtime.ledger.submit(
                    self._ledger_record(outcome=names.OUTCOME_BLOCKED, error_type=type(error).__qualname__)
                )
        except Exception as fault:
            record_fault("call.block", fault)
        finally:
            span.end()


def call_attribution(runtime: Runtime, request_user: str | None) -> Attribution:
    """Who a call made now is for (the context's attribution, else `request_user`), with the user
    in the form the configuration's pseudonymiser gives it."""
    attribution = current_attribution(request_user)
    pseudonymize = runtime.pseudonymize
    if pseudonymize is not None and attribution.user is not None:
        attribution = Attribution(
            pseudonymize(attribution.user), attribution.tenant, attribution.feature, attribution.metadata
        )
    return attribution


def begin_call(
    runtime: Runtime,
    provider: str,
    operation: str,
    request_model: str,
    server: str,
    stream: bool,
    request_user: str | None,
    estimate_usd: Callable[[], float | None] | None = None,
    prompt_chars: Callable[[], int] | None = None,
    made: bool = False,
) -> Call:
    """Start a call: attribution, span and (where budgets apply) check-and-reserve.

    `prompt_chars` (the prompt's length, computed only when needed) lets a response that carries no
    usage be estimated. Raises `BudgetExceeded` when a hard budget or the block list stops the call; any other fault is
    the caller's to catch (instrumentors then call the SDK uninstrumented). `made`: the call was
    made already (a batch's result): budgets count it and never block it, and no duration is kept.
    """
    attribution = call_attribution(runtime, request_user)
    call = Call(runtime, provider, operation, request_model, server, stream, attribution, prompt_chars)
    guard = runtime.guard
    if made:
        call.timed = False
    if guard is not None:
        from .budgets import BudgetExceeded, PendingCall

        try:
            pending = PendingCall(
                provider=provider,
                model=request_model,
                operation=operation,
                user=attribution.user,
                tenant=attribution.tenant,
                feature=attribution.feature,
                estimate_usd=estimate_usd() if estimate_usd is not None else None,
            )
            call.reservation = guard.count_made(pending) if made else guard.check_and_reserve(pending)
        except BudgetExceeded as exceeded:
            call.block(exceeded)
            raise
        except Exception as fault:
            record_fault("budget.check", fault)
    return call
