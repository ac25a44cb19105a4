"""Reading GenAI usage off spans that other instrumentations made.

Instrumentations disagree on attribute names across semconv versions: the official OTel GenAI
instrumentations write `gen_ai.provider.name` and `gen_ai.usage.input_tokens` / `output_tokens` /
`cache_read.input_tokens`; older ones and OpenLLMetry write `gen_ai.system`,
`gen_ai.usage.prompt_tokens` / `completion_tokens`, `gen_ai.usage.cache_read_input_tokens` and
`gen_ai.usage.cache_creation_input_tokens`. Every variant is read, the semconv one first. Input is
taken as semconv defines it (cache reads and writes included); a span whose cache counts exceed its
input plainly used Anthropic's exclusive meaning, and its cache counts are added back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import names
from .._usage import Usage

# Foreign attribute names (read, never written). TODO(lead): move into genai_meter.names.
LEGACY_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read_input_tokens"
LEGACY_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation_input_tokens"
SEMCONV_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
ANTHROPIC_CACHE_WRITE_1H_TOKENS = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"

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


@dataclass(frozen=True, slots=True)
class SpanUsage:
    provider: str
    model: str
    request_model: str | None
    usage: Usage


def _first_count(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return int(value)
    return None


def _first_text(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def span_usage(attributes: Mapping[str, Any]) -> SpanUsage | None:
    """The provider, model and usage a span reports, or None when it reports no GenAI usage."""
    input_tokens = _first_count(attributes, _INPUT)
    output_tokens = _first_count(attributes, _OUTPUT)
    if input_tokens is None and output_tokens is None:
        return None
    provider = _first_text(attributes, _PROVIDER)
    model = _first_text(attributes, _MODEL)
    if provider is None or model is None:
        return None
    cache_read = _first_count(attributes, _CACHE_READ) or 0
    cache_write = _first_count(attributes, _CACHE_WRITE) or 0
    write_1h = _first_count(attributes, (ANTHROPIC_CACHE_WRITE_1H_TOKENS,)) or 0
    total_input = input_tokens or 0
    if cache_read + cache_write > total_input:
        total_input += cache_read + cache_write
    return SpanUsage(
        provider=provider.lower(),
        model=model,
        request_model=_first_text(attributes, (names.REQUEST_MODEL,)),
        usage=Usage(
            input_tokens=total_input,
            output_tokens=output_tokens or 0,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=min(write_1h, cache_write),
        ),
    )
