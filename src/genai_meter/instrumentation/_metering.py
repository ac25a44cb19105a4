"""The one shape of every metered SDK call, whatever the provider.

An instrumentor supplies `begin(kwargs) -> Metered` (read the request, start the call) and the
provider-specific handling of the result; this module does the rest the same way everywhere: skip
when instrumentation is suppressed, call the SDK uninstrumented when genai-meter's own part fails
(recorded as a fault), let only `BudgetExceeded` reach the app, keep the span current around the
SDK's HTTP call (never across a `yield`), end the call on the SDK's errors, and hand the app the
SDK's own result (or the stream genai-meter metered in place).

An exception of the SDK is the call's error, wherever it is raised: from the call itself (a provider
error, or a response the SDK received and then rejected, such as structured output that fails
validation) or from the SDK's own `parse()` of a raw response (`ResponseError`). Only an exception
of genai-meter's own code is a fault.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from opentelemetry.context import get_current

from .. import names
from .._call import Call, call_attribution
from .._faults import record_fault
from .._runtime import Runtime
from .._usage import estimate_tokens, new_usage
from ._patching import Wrapper

try:
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
except ImportError:  # (an API without it: only the plain key, which instrumentations set too)
    _SUPPRESS_INSTRUMENTATION_KEY = "suppress_instrumentation"


# The older of the two context keys that suppress instrumentation, which some instrumentations set alone
_SUPPRESS_PLAIN_KEY = "suppress_instrumentation"


def _suppressed() -> bool:
    """Whether the current context suppresses instrumentation: `not is_instrumentation_enabled()`,
    which reads the context twice through `get_value` (three Python frames each), with one look."""
    context = get_current()
    return bool(context.get(_SUPPRESS_INSTRUMENTATION_KEY) or context.get(_SUPPRESS_PLAIN_KEY))


class Metered(NamedTuple):
    """A started call: the kwargs to send (genai-meter may add `include_usage`), what to do with the
    SDK's result (returns what the app receives) and, optionally, how to end the call when the SDK
    raises (an instrumentor that can find the usage of a response the SDK received before raising
    records it; by default the call ends with the error and no usage)."""

    call: Call
    send_kwargs: dict[str, Any]
    on_result: Callable[[Any], Any]
    on_error: Callable[[Call, BaseException], None] | None = None


# `Metered(...)` made with all four fields, without the Python `__new__` a NamedTuple's call runs
new_metered: Callable[[tuple[Call, dict[str, Any], Callable[[Any], Any], Any]], Metered] = functools.partial(
    tuple.__new__, Metered
)


class ResponseError(Exception):
    """Raised by an `on_result` when the SDK itself could not read the response it got (the `parse()`
    of a raw response failed): `error`, the SDK's exception, is the call's error, not a fault of
    genai-meter's (whose log line would carry the SDK's message, and with it the response's text)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__qualname__)
        self.error = error


def _end_with_error(
    where: str, call: Call, on_error: Callable[[Call, BaseException], None] | None, error: BaseException
) -> None:
    """End the call with the SDK's `error`, through the instrumentor's `on_error` when it has one."""
    if on_error is not None:
        try:
            on_error(call, error)
        except Exception as fault:
            record_fault(f"{where}.error", fault)
    call.finish(usage=None, error=error)  # a no-op when `on_error` ended the call


def is_budget_error(error: BaseException) -> bool:
    from ..budgets import BudgetExceeded

    return isinstance(error, BudgetExceeded)


def metered_call(
    where: str,
    send: Callable[[dict[str, Any]], Any],
    kwargs: dict[str, Any],
    begin: Callable[[dict[str, Any]], Metered],
) -> Any:
    """Run one synchronous SDK call under metering."""
    if _suppressed():
        return send(kwargs)
    try:
        call, send_kwargs, on_result, on_error = begin(kwargs)
    except Exception as error:
        if is_budget_error(error):
            raise
        record_fault(f"{where}.begin", error)
        return send(kwargs)
    token = call.activate()
    try:
        result = send(send_kwargs)
    except BaseException as error:
        _end_with_error(where, call, on_error, error)
        raise
    finally:
        call.deactivate(token)
    try:
        return on_result(result)
    except ResponseError as failed:
        _end_with_error(where, call, on_error, failed.error)
        return result
    except Exception as fault:
        record_fault(f"{where}.response", fault)
        call.finish(usage=None)
        return result
    except BaseException as error:  # cancelled, or Ctrl-C, while the SDK read a raw response's body
        _end_with_error(where, call, on_error, error)
        raise


async def metered_call_async(
    where: str,
    send: Callable[[dict[str, Any]], Awaitable[Any]],
    kwargs: dict[str, Any],
    begin: Callable[[dict[str, Any]], Metered],
) -> Any:
    """Run one asynchronous SDK call under metering; `on_result` may return an awaitable."""
    if _suppressed():
        return await send(kwargs)
    try:
        call, send_kwargs, on_result, on_error = begin(kwargs)
    except Exception as error:
        if is_budget_error(error):
            raise
        record_fault(f"{where}.begin", error)
        return await send(kwargs)
    token = call.activate()
    try:
        result = await send(send_kwargs)
    except BaseException as error:
        _end_with_error(where, call, on_error, error)
        raise
    finally:
        call.deactivate(token)
    try:
        handled = on_result(result)
        if inspect.isawaitable(handled):
            handled = await handled
        return handled
    except ResponseError as failed:
        _end_with_error(where, call, on_error, failed.error)
        return result
    except Exception as fault:
        record_fault(f"{where}.response", fault)
        call.finish(usage=None)
        return result
    except BaseException as error:  # cancelled, or Ctrl-C, while the SDK read a raw response's body
        _end_with_error(where, call, on_error, error)
        raise


def budget_estimate(
    runtime: Runtime, provider: str, model: str, prompt_chars: Callable[[], int], max_output_tokens: int | None
) -> Callable[[], float | None] | None:
    """The reservation a budget guard makes for a call: the prompt (about 4 characters a token) and
    `max_tokens` at the model's prices. None when no budget is configured, so nothing is computed."""
    if runtime.guard is None:
        return None

    def estimate() -> float | None:
        pricing = runtime.prices.resolve(provider, model)
        if pricing is None or max_output_tokens is None:
            return None
        usage = new_usage(input_tokens=estimate_tokens(prompt_chars()), output_tokens=max_output_tokens)
        return pricing.cost(usage, time.time()).total_usd

    return estimate


def batch_request_cost(runtime: Runtime, provider: str, model: str, prompt_chars: int, max_output: int | None) -> float:
    """What one request of a batch costs at most, at the batch price: the prompt (about 4 characters
    a token) and the whole output limit; 0 where the model has no price or the request no limit."""
    pricing = runtime.prices.resolve(provider, model)
    if pricing is None or max_output is None:
        return 0.0
    usage = new_usage(input_tokens=estimate_tokens(prompt_chars), output_tokens=max_output)
    return pricing.cost(usage, time.time(), "batch").total_usd


def check_batch(runtime: Runtime, provider: str, model: str, estimate_usd: float, requests: int) -> None:
    """Ask the budgets whether a batch of `requests` calls estimated at `estimate_usd` may be
    created for the context's user, tenant and feature: raises BudgetExceeded where it may not
    (`BudgetGuard.check_batch`)."""
    guard = runtime.guard
    if guard is None:
        return
    from ..budgets import PendingCall

    who = call_attribution(runtime, None)
    guard.check_batch(PendingCall(provider, model, "batch", who.user, who.tenant, who.feature, estimate_usd), requests)


Observer = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], None]


def checked_before(
    check: Callable[[Any, tuple[Any, ...], dict[str, Any]], None], where: str
) -> tuple[Wrapper, Wrapper]:
    """Sync and async wrappers of an SDK method that run `check(instance, args, kwargs)` before it
    (a batch's budget check): the BudgetExceeded it raises stops the call; any other fault of it is
    recorded under `where` and the call goes on."""

    def checked(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            check(instance, args, kwargs)
        except Exception as error:
            if is_budget_error(error):
                raise
            record_fault(where, error)

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        checked(instance, args, kwargs)
        return wrapped(*args, **kwargs)

    async def async_wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        checked(instance, args, kwargs)
        return await wrapped(*args, **kwargs)

    return sync_wrapper, async_wrapper


def observed_after(observe: Observer, where: str) -> tuple[Wrapper, Wrapper]:
    """Sync and async wrappers of an SDK method that hand its answer to `observe(answer, instance,
    args, kwargs)` (a batch's results, metered as the app reads them) and return it unchanged; a
    fault of `observe` is recorded under `where`."""

    def observed(answer: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            observe(answer, instance, args, kwargs)
        except Exception as fault:
            record_fault(where, fault)
        return answer

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return observed(wrapped(*args, **kwargs), instance, args, kwargs)

    async def async_wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return observed(await wrapped(*args, **kwargs), instance, args, kwargs)

    return sync_wrapper, async_wrapper


def capture_input(runtime: Runtime, call: Call, where: str, prompt_of: Callable[[], Any]) -> None:
    """Put the prompt on the span, only when the user opted in to content capture (`prompt_of` is
    called only then, so a provider that assembles its prompt does so only then)."""
    if not runtime.config.capture_content:
        return
    prompt = prompt_of()
    if prompt is None:
        return
    try:
        call.span.set_attribute(names.INPUT_MESSAGES, json.dumps(prompt, default=str))
    except Exception as fault:
        record_fault(f"{where}.capture_content", fault)
