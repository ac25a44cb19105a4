"""Meters every Google Gen AI SDK (`google-genai`) generation: tokens, cost in USD, on spans and metrics.

Zero code::

    pip install genai-meter
    opentelemetry-instrument python app.py

or explicitly::

    from genai_meter.instrumentation.google_genai import GoogleGenAIInstrumentor
    GoogleGenAIInstrumentor().instrument()

Covers `models.generate_content` and `models.generate_content_stream`, sync and async
(`client.aio.models`), and what is built on them (`chats`). Each HTTP request is one metered call,
so automatic function calling and automatic continuation, which send several, are billed per
request. Provider `gcp.gemini` for the Gemini Developer API, `gcp.vertex_ai` for a `vertexai=True`
client. Thinking tokens are billed as output: output = candidates + thoughts, reasoning = thoughts.
`models.embed_content` (sync and async) is metered as `embeddings`: the prompt's tokens from the
response's `usage_metadata` (Gemini API) or the embeddings' own counts (Vertex AI), else estimated.
Batch Mode jobs (`batches.get`): each inlined response is metered once as the app reads the done job,
at the batch price; `batches.create` is checked against hard budgets first (see `_batches`).
`uninstrument()` restores the SDK.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ..._runtime import set_providers
from .._patching import Wrapper, patch, unpatch
from ._batches import (
    async_create_wrapper,
    async_download_wrapper,
    async_get_wrapper,
    create_wrapper,
    download_wrapper,
    get_wrapper,
)
from ._wrappers import (
    async_embed_wrapper,
    async_stream_wrapper,
    async_wrapper,
    embed_wrapper,
    sync_stream_wrapper,
    sync_wrapper,
)
from .package import _instruments

_MODELS = "google.genai.models"

# (class, per-request method, public fallback for SDKs without it, wrapper)
_TARGETS: tuple[tuple[str, str, str, Wrapper], ...] = (
    ("Models", "_generate_content", "generate_content", sync_wrapper),
    ("Models", "_generate_content_stream", "generate_content_stream", sync_stream_wrapper),
    ("AsyncModels", "_generate_content", "generate_content", async_wrapper),
    ("AsyncModels", "_generate_content_stream", "generate_content_stream", async_stream_wrapper),
    ("Models", "_embed_content", "embed_content", embed_wrapper),
    ("AsyncModels", "_embed_content", "embed_content", async_embed_wrapper),
)


_BATCHES = "google.genai.batches"
# Batch Mode: a job's responses metered as the app reads them (the job, or its responses file), its
# creation checked (`_batches`)
_BATCH_TARGETS: tuple[tuple[str, str, str, Wrapper], ...] = (
    (_BATCHES, "Batches", "get", get_wrapper),
    (_BATCHES, "AsyncBatches", "get", async_get_wrapper),
    (_BATCHES, "Batches", "create", create_wrapper),
    (_BATCHES, "AsyncBatches", "create", async_create_wrapper),
    ("google.genai.files", "Files", "download", download_wrapper),
    ("google.genai.files", "AsyncFiles", "download", async_download_wrapper),
)


class GoogleGenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrumentor for the `google-genai` SDK (entry point `genai_meter_google_genai`)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        import google.genai  # noqa: F401  (fails early, and quietly under the launcher, when not installed)

        set_providers(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        for cls, method, public, wrapper in _TARGETS:
            if not patch(_MODELS, cls, method, wrapper):
                patch(_MODELS, cls, public, wrapper)
        for module, cls, method, wrapper in _BATCH_TARGETS:
            patch(module, cls, method, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        for cls, method, public, _wrapper in _TARGETS:
            unpatch(_MODELS, cls, method)
            unpatch(_MODELS, cls, public)
        for module, cls, method, _wrapper in _BATCH_TARGETS:
            unpatch(module, cls, method)


__all__ = ["GoogleGenAIInstrumentor"]
