"""Meters every OpenAI SDK call: tokens, cost in USD and who caused it, on spans and metrics.

Zero code::

    pip install genai-meter
    opentelemetry-instrument python app.py

or explicitly::

    from genai_meter.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()

Covers `chat.completions.create` / `.parse` / `.stream`, `responses.create` / `.parse` / `.stream`,
`embeddings.create`, `images.generate` / `.edit` and legacy `completions.create` (a background
response is finished by the `responses.retrieve` that shows it done), on `OpenAI`, `AsyncOpenAI`, `AzureOpenAI`
(provider `azure.ai.openai`) and OpenAI-compatible base URLs, including `with_raw_response` and
streams used as iterators or context managers. A Batch's output file is metered as the app
downloads it (`files.content`, see `_batch_output`), and a Batch whose input file was uploaded here
is checked against the budgets before it is created (`_batch_input`). `uninstrument()` restores
the SDK.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ..._runtime import set_providers
from .._patching import patch, unpatch
from . import _usage_request
from ._background import fetch_wrapper
from ._batch_input import async_create_wrapper, async_upload_wrapper, create_wrapper, upload_wrapper
from ._batch_output import async_content_wrapper, content_wrapper
from ._observers import finish_response
from ._wrappers import (
    CHAT,
    EMBEDDINGS,
    IMAGES,
    RAW_RESPONSES,
    RESPONSES,
    TEXT_COMPLETION,
    Operation,
    async_wrapper,
    sync_wrapper,
)
from .package import _instruments

_CHAT_MODULE = "openai.resources.chat.completions.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"
_EMBEDDINGS_MODULE = "openai.resources.embeddings"
_COMPLETIONS_MODULE = "openai.resources.completions"
_FILES_MODULE = "openai.resources.files"
_IMAGES_MODULE = "openai.resources.images"
_BATCHES_MODULE = "openai.resources.batches"
# (module, class, method, wrapper): batches' files and creation (see `_batch_input`, `_batch_output`)
_BATCH_TARGETS: tuple[tuple[str, str, str, Any], ...] = (
    (_FILES_MODULE, "Files", "content", content_wrapper),
    (_FILES_MODULE, "AsyncFiles", "content", async_content_wrapper),
    (_FILES_MODULE, "Files", "create", upload_wrapper),
    (_FILES_MODULE, "AsyncFiles", "create", async_upload_wrapper),
    (_BATCHES_MODULE, "Batches", "create", create_wrapper),
    (_BATCHES_MODULE, "AsyncBatches", "create", async_create_wrapper),
)

# (module, sync class, async class, method, operation)
_TARGETS: tuple[tuple[str, str, str, str, Operation], ...] = (
    (_CHAT_MODULE, "Completions", "AsyncCompletions", "create", CHAT),
    (_CHAT_MODULE, "Completions", "AsyncCompletions", "parse", CHAT),
    (_RESPONSES_MODULE, "Responses", "AsyncResponses", "create", RESPONSES),
    (_RESPONSES_MODULE, "Responses", "AsyncResponses", "parse", RESPONSES),
    (_EMBEDDINGS_MODULE, "Embeddings", "AsyncEmbeddings", "create", EMBEDDINGS),
    (_COMPLETIONS_MODULE, "Completions", "AsyncCompletions", "create", TEXT_COMPLETION),
    (_IMAGES_MODULE, "Images", "AsyncImages", "generate", IMAGES),
    (_IMAGES_MODULE, "Images", "AsyncImages", "edit", IMAGES),
)
# Fetching a background response finishes the call its create held open (see `_background`).
_FETCHES = ("retrieve", "cancel")



class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrumentor for the `openai` SDK (entry point `genai_meter_openai`)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        import openai  # noqa: F401  (fails early, and quietly under the launcher, when not installed)

        set_providers(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        RAW_RESPONSES.load()
        for module, sync_class, async_class, method, operation in _TARGETS:
            patch(module, sync_class, method, sync_wrapper(operation))
            patch(module, async_class, method, async_wrapper(operation))
        for method in _FETCHES:
            patch(_RESPONSES_MODULE, "Responses", method, fetch_wrapper(RAW_RESPONSES, finish_response, False))
            patch(_RESPONSES_MODULE, "AsyncResponses", method, fetch_wrapper(RAW_RESPONSES, finish_response, True))
        for module, cls, method, wrapper in _BATCH_TARGETS:
            patch(module, cls, method, wrapper)
        _usage_request.instrument()

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, sync_class, async_class, method, _operation in _TARGETS:
            unpatch(module, sync_class, method)
            unpatch(module, async_class, method)
        for method in _FETCHES:
            unpatch(_RESPONSES_MODULE, "Responses", method)
            unpatch(_RESPONSES_MODULE, "AsyncResponses", method)
        for module, cls, method, _wrapper in _BATCH_TARGETS:
            unpatch(module, cls, method)
        _usage_request.uninstrument()


__all__ = ["OpenAIInstrumentor"]
