"""Meters every Anthropic SDK call: tokens, cost in USD and who caused it, on spans and metrics.

Zero code::

    pip install genai-meter
    opentelemetry-instrument python app.py

or explicitly::

    from genai_meter.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument()

Covers `messages.create` (streaming or not), `messages.parse`, the `messages.stream` helper (as a
context manager, `text_stream`, `get_final_message`) and the same on `beta.messages`, on
`Anthropic`, `AsyncAnthropic` and the SDK's Bedrock (provider `aws.bedrock`) and Vertex
(`gcp.vertex_ai`) clients, including `with_raw_response`, also when another instrumentation
(OpenLLMetry) wraps the same methods. `metadata.user_id` attributes the call when no user is set in
context. A response without usage is estimated from the text, and marked so; the service tier
Anthropic reports (`batch`) is priced. A Message Batch's results are metered as the app reads them
(`messages.batches.results`, see `_batches`). `uninstrument()` takes off genai-meter's wrappers only, and
restores the SDK when they were alone.

The SDK (2.x) may also trace itself (client option `open_telemetry`). Its span is then a child of
genai-meter's and carries the same usage; genai-meter leaves it alone, records the call's cost and
metrics once (in its own wrapper only), and the cost exporter does not price that child again.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ..._runtime import set_providers
from .._patching import Wrapper, patch, unpatch
from ._batches import async_create_wrapper, async_results_wrapper, create_wrapper, results_wrapper
from ._wrappers import RAW_RESPONSES, async_wrapper, manager_init_wrapper, stream_wrapper, sync_wrapper
from .package import _instruments

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_STREAMING = "anthropic.lib.streaming._messages"
_BETA_STREAMING = "anthropic.lib.streaming._beta_messages"

# (module, class, method, wrapper)
_TARGETS: tuple[tuple[str, str, str, Wrapper], ...] = tuple(
    (module, cls, method, wrapper)
    for module in (_MESSAGES, _BETA_MESSAGES)
    for cls, method, wrapper in (
        ("Messages", "create", sync_wrapper),
        ("Messages", "parse", sync_wrapper),
        ("Messages", "stream", stream_wrapper),
        ("AsyncMessages", "create", async_wrapper),
        ("AsyncMessages", "parse", async_wrapper),
        ("AsyncMessages", "stream", stream_wrapper),
    )
) + tuple(
    # the managers `stream` builds: their request is metered (see `_wrappers`)
    (module, cls, "__init__", manager_init_wrapper)
    for module, classes in (
        (_STREAMING, ("MessageStreamManager", "AsyncMessageStreamManager")),
        (_BETA_STREAMING, ("BetaMessageStreamManager", "BetaAsyncMessageStreamManager")),
    )
    for cls in classes
) + tuple(
    # a Message Batch's results, metered as the app reads them (see `_batches`)
    (module, cls, method, wrapper)
    for module in ("anthropic.resources.messages.batches", "anthropic.resources.beta.messages.batches")
    for cls, method, wrapper in (
        ("Batches", "results", results_wrapper),
        ("AsyncBatches", "results", async_results_wrapper),
        ("Batches", "create", create_wrapper),  # checked against the budgets before it is sent
        ("AsyncBatches", "create", async_create_wrapper),
    )
)


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrumentor for the `anthropic` SDK (entry point `genai_meter_anthropic`)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        import anthropic  # noqa: F401  (fails early, and quietly under the launcher, when not installed)

        set_providers(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        RAW_RESPONSES.load()
        for module, cls, method, wrapper in _TARGETS:
            patch(module, cls, method, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, cls, method, _wrapper in _TARGETS:
            unpatch(module, cls, method)


__all__ = ["AnthropicInstrumentor"]
