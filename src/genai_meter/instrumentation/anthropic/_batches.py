"""Metering a Message Batch's results as the app reads them (`messages.batches.results`).

A batch's requests are billed when they succeed, at the batch price (half the standard one; each
result's usage says `service_tier: "batch"`). genai-meter sees neither the requests being sent nor
their answers arriving, only the results the app reads back, so each succeeded result becomes a call
then: a span (`genai_meter.batch.id`, `genai_meter.batch.custom_id`), tokens, cost, attribution (the
context the app reads them in: the request's `metadata.user_id` is not in its result, so it cannot
be the fallback user here), a ledger row under the message's id, and budgets count it (never block
it: it is spent). No duration is recorded: it would be the time it took to read the line. Errored,
canceled and expired results are not billed and not recorded; results the app does not read are
not metered.

Creating a batch (`messages.batches.create`) is checked against the hard budgets first
(`BudgetGuard.check_batch`): its estimate (every request's prompt and whole `max_tokens` at the
batch price) and its request count must fit, or `BudgetExceeded` is raised and nothing is sent.
Nothing is reserved: its cost counts as its results are read.

Reading the same results twice in one process meters them once (the message ids already metered are
kept, a bounded number); the ledger keeps one row per message id anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ... import names
from ..._call import begin_call
from ..._faults import record_fault
from ..._runtime import Runtime, get_runtime
from .._batch_seen import first_time
from .._metering import batch_request_cost, check_batch, checked_before
from .._values import content_chars, number, text
from ._observers import finish_message
from ._request import client_info


def _meter_result(item: Any, batch_id: str, provider: str, server: str) -> None:
    result = getattr(item, "result", None)
    if getattr(result, "type", None) != "succeeded":
        return  # not billed
    message = getattr(result, "message", None)
    message_id = text(getattr(message, "id", None))
    if message is None or (message_id is not None and not first_time(message_id)):
        return
    runtime = get_runtime()
    model = text(getattr(message, "model", None)) or "unknown"
    call = begin_call(runtime, provider, "chat", model, server, False, None, made=True)
    call.span.set_attribute(names.BATCH_ID, batch_id)
    custom_id = text(getattr(item, "custom_id", None))
    if custom_id is not None:
        call.span.set_attribute(names.BATCH_CUSTOM_ID, custom_id)
    finish_message(call, message)


def _meter_safely(item: Any, batch_id: str, provider: str, server: str) -> None:
    try:
        _meter_result(item, batch_id, provider, server)
    except Exception as fault:
        record_fault("anthropic.batch_result", fault)


def _metered(results: Any, batch_id: str, provider: str, server: str) -> Iterator[Any]:
    for item in results:
        _meter_safely(item, batch_id, provider, server)
        yield item


async def _metered_async(results: Any, batch_id: str, provider: str, server: str) -> AsyncIterator[Any]:
    async for item in results:
        _meter_safely(item, batch_id, provider, server)
        yield item


def _batch_estimate(runtime: Runtime, provider: str, requests: list[Any]) -> tuple[float, str]:
    """The batch's cost if every request used its whole `max_tokens`, at the batch price (the prompt
    at about 4 characters a token; a request whose model has no price adds nothing), and the first
    request's model."""
    total = 0.0
    first_model = ""
    for request in requests:
        params = request.get("params") if isinstance(request, dict) else None
        if not isinstance(params, dict):
            continue
        model = text(params.get("model")) or "unknown"
        first_model = first_model or model
        chars = content_chars(params.get("system")) + content_chars(params.get("messages"))
        total += batch_request_cost(runtime, provider, model, chars, number(params.get("max_tokens")))
    return total, first_model


def _check_budgets(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse the batch (BudgetExceeded) where a hard budget has no room for its estimate."""
    runtime = get_runtime()
    requests = kwargs.get("requests", args[0] if args else None)
    if runtime.guard is None or not isinstance(requests, list) or not requests:
        return
    provider, _server = _where(instance)
    estimate, model = _batch_estimate(runtime, provider, requests)
    check_batch(runtime, provider, model, estimate, len(requests))


# (a budget refusal stops the batch; any other fault of the check is recorded and the batch goes on)
create_wrapper, async_create_wrapper = checked_before(_check_budgets, "anthropic.batch_create")


def _batch_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return text(kwargs.get("message_batch_id", args[0] if args else None)) or "unknown"


def _where(instance: Any) -> tuple[str, str]:
    info = client_info(instance, get_runtime())
    return info.provider, info.server


def _wrap(decoder: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], meter: Callable[..., Any]) -> Any:
    """The SDK's decoder itself (its type and every method as they are), reading its results
    through `meter`: its `_iterator`, which its iteration and `next()` both read, is replaced."""
    try:
        items = getattr(decoder, "_iterator", None)
        if items is None:
            raise TypeError(f"{type(decoder).__qualname__} has no _iterator: its results are not metered")
        provider, server = _where(instance)
        decoder._iterator = meter(items, _batch_id(args, kwargs), provider, server)
    except Exception as fault:
        record_fault("anthropic.batch_results", fault)
    return decoder


def results_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Batches.results` (sync): the decoder it returns, metering each result read."""
    return _wrap(wrapped(*args, **kwargs), instance, args, kwargs, _metered)


async def async_results_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncBatches.results`."""
    return _wrap(await wrapped(*args, **kwargs), instance, args, kwargs, _metered_async)
