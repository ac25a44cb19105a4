"""Reading GenAI usage off spans that other instrumentations made.

Instrumentations disagree on attribute names across semconv versions: the official OTel GenAI
instrumentations write `gen_ai.provider.name` and `gen_ai.usage.input_tokens` / `output_tokens` /
`cache_read.input_tokens`; older ones and OpenLLMetry write `gen_ai.system`,
`gen_ai.usage.prompt_tokens` / `completion_tokens`, `gen_ai.usage.cache_read_input_tokens` and
`gen_ai.usage.cache_creation_input_tokens`. Every variant is read, the semconv one first. Input is
taken as semconv defines it (cache reads and writes included); a span whose cache counts exceed its
input plainly used Anthropic's exclusive meaning, and its cache counts are added back. The service
tier the response reports (`openai.response.service_tier`, `gen_ai.openai.response.service_tier`,
`anthropic.response.service_tier`) picks the tier's prices (flex, batch, priority). The anthropic
SDK's span counts the tokens of context compactions apart (`anthropic.usage.compaction.*`, left out
of its `gen_ai.usage.*`); they are added in, priced as a request of their own, the input at the
plain input rate (the span gives no cache breakdown of them).

A count that is there but cannot be a token count (NaN, infinite, negative, a bool, a string, a
list, past `MAX_TOKEN_COUNT`) counts as 0 and marks the usage `suspect`, as in genai-meter's own
readers: the span is priced on what could be read, and says so, instead of being quietly
under-priced or breaking the export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import names
from .._usage import MAX_TOKEN_COUNT, Usage
from ..instrumentation.openai._request import DEFAULT_PORTS

# Foreign attribute names (read, never written). TODO(lead): move into genai_meter.names.
LEGACY_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read_input_tokens"
LEGACY_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation_input_tokens"
SEMCONV_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
ANTHROPIC_CACHE_WRITE_1H_TOKENS = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
# The anthropic SDK's span: the tokens of the context compactions, which its top-level usage (and so
# gen_ai.usage.*) leaves out; the input one includes the compactions' cache reads and writes.
ANTHROPIC_COMPACTION_INPUT_TOKENS = "anthropic.usage.compaction.input_tokens"
ANTHROPIC_COMPACTION_OUTPUT_TOKENS = "anthropic.usage.compaction.output_tokens"
# The service tier the call was billed at, as the response says: current semconv (and openai-v2 on
# the Responses API, OpenLLMetry), older semconv (openai-v2 on Chat Completions), the anthropic SDK.
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
LEGACY_OPENAI_RESPONSE_SERVICE_TIER = "gen_ai.openai.response.service_tier"
ANTHROPIC_RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"

_INPUT = (names.USAGE_INPUT_TOKENS, names.LEGACY_USAGE_PROMPT_TOKENS)
_OUTPUT = (names.USAGE_OUTPUT_TOKENS, names.LEGACY_USAGE_COMPLETION_TOKENS)
_CACHE_READ = (names.USAGE_CACHE_READ_INPUT_TOKENS, LEGACY_USAGE_CACHE_READ_INPUT_TOKENS)
_CACHE_WRITE = (
    names.USAGE_CACHE_WRITE_INPUT_TOKENS,
    SEMCONV_USAGE_CACHE_CREATION_INPUT_TOKENS,
    LEGACY_USAGE_CACHE_CREATION_INPUT_TOKENS,
)
_PROVIDER = (names.PROVIDER_NAME, names.LEGACY_SYSTEM)
_MODEL = (names.RESPONSE_MODEL, names.REQUEST_MODEL)
_COMPACTION_INPUT = (ANTHROPIC_COMPACTION_INPUT_TOKENS,)
_COMPACTION_OUTPUT = (ANTHROPIC_COMPACTION_OUTPUT_TOKENS,)
_SERVICE_TIER = (OPENAI_RESPONSE_SERVICE_TIER, LEGACY_OPENAI_RESPONSE_SERVICE_TIER, ANTHROPIC_RESPONSE_SERVICE_TIER)


@dataclass(frozen=True, slots=True)
class SpanUsage:
    provider: str
    model: str
    request_model: str | None
    usage: Usage
    service_tier: str | None = None


class _Counts:
    """Reads token counts, remembering whether one was there but unreadable."""

    __slots__ = ("suspect",)

    def __init__(self) -> None:
        self.suspect = False

    def first(self, attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
        """The first readable count of `keys`; 0 when only unreadable ones are there; None when none is."""
        unreadable = False
        for key in keys:
            value = attributes.get(key)
            if value is None:
                continue
            if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:
                return value
            if type(value) is float and 0 <= value <= MAX_TOKEN_COUNT:  # False for NaN
                return int(value)
            unreadable = self.suspect = True
        return 0 if unreadable else None


def _first_text(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def span_usage(attributes: Mapping[str, Any]) -> SpanUsage | None:
    """The provider, model and usage a span reports, or None when it reports no GenAI usage."""
    read = _Counts()
    input_tokens = read.first(attributes, _INPUT)
    output_tokens = read.first(attributes, _OUTPUT)
    if input_tokens is None and output_tokens is None:
        return None
    provider = _first_text(attributes, _PROVIDER)
    model = _first_text(attributes, _MODEL)
    if provider is None or model is None:
        return None
    cache_read = read.first(attributes, _CACHE_READ) or 0
    cache_write = read.first(attributes, _CACHE_WRITE) or 0
    write_1h = read.first(attributes, (ANTHROPIC_CACHE_WRITE_1H_TOKENS,)) or 0
    total_input = input_tokens or 0
    if cache_read + cache_write > total_input:
        total_input += cache_read + cache_write
    output = output_tokens or 0
    compaction_input = read.first(attributes, _COMPACTION_INPUT) or 0
    compaction_output = read.first(attributes, _COMPACTION_OUTPUT) or 0
    # (billed as requests of their own: priced apart, each against the long-context tier on its own)
    parts = (
        (Usage(input_tokens=compaction_input, output_tokens=compaction_output),)
        if compaction_input or compaction_output
        else ()
    )
    total_input += compaction_input
    output += compaction_output
    return SpanUsage(
        provider=provider.lower(),
        model=model,
        request_model=_first_text(attributes, (names.REQUEST_MODEL,)),
        usage=Usage(
            input_tokens=total_input,
            output_tokens=output,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=min(write_1h, cache_write),
            suspect=read.suspect,
            parts=parts,
        ),
        service_tier=_first_text(attributes, _SERVICE_TIER),
    )


def server_of(attributes: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """The host and port of the server a span's call went to: `server.address` / `server.port`, or
    OpenLLMetry's `gen_ai.openai.api_base` (a base URL)."""
    host = attributes.get(names.SERVER_ADDRESS)
    port = attributes.get(names.SERVER_PORT)
    if isinstance(host, str) and host:
        return host, port if type(port) is int else None
    base = attributes.get("gen_ai.openai.api_base")
    if isinstance(base, str) and base:
        try:
            parts = urlsplit(base)
            return parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            return None, None
    return None, None
