"""The call ending's shortcuts give what the general paths give.

`Call._record` checks only the end attributes an instrumentor hands over (finish reasons, service
tier, output messages) before putting them straight into the span's store; the verdict must be the
one `_span_attributes._plain` gives for the whole mapping, and what is exported the same."""

from __future__ import annotations

from typing import Any

import pytest

from genai_meter import _call
from genai_meter._call import begin_call
from genai_meter._runtime import get_runtime
from genai_meter._span_attributes import _plain
from genai_meter._usage import Usage, anthropic_usage, openai_chat_usage
from genai_meter.instrumentation.openai import OpenAIInstrumentor

from .conftest import instrumented

USAGE = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=256)


@pytest.mark.parametrize(
    ("finish_reasons", "service_tier", "output_messages"),
    [
        (("stop",), "flex", '[{"role": "assistant", "content": "hi"}]'),
        (("stop", "length"), None, None),
        (None, None, None),
        (("stop", 3), None, None),  # a tuple of mixed types: the SDK drops it
        (["stop"], None, None),  # a list: left to the SDK's cleaning
        ("stop", None, None),  # text where a tuple was expected: plain all the same
        (("stop",), 2, None),  # a number is plain
        (("stop",), b"flex", None),  # bytes are not
        (None, None, {"role": "assistant"}),  # nor is a mapping
    ],
)
def test_the_end_attributes_are_checked_as_add_span_attributes_checks_them(
    monkeypatch: pytest.MonkeyPatch, finish_reasons: Any, service_tier: Any, output_messages: Any
) -> None:
    seen: list[tuple[dict[str, Any], bool]] = []
    original = _call.add_span_attributes

    def spy(span: Any, attrs: dict[str, Any], plain: bool, store: Any = None) -> None:
        seen.append((dict(attrs), plain))
        original(span, attrs, plain, store)

    monkeypatch.setattr(_call, "add_span_attributes", spy)
    with instrumented(OpenAIInstrumentor(), ledger_url="off", capture_content=True) as telemetry:
        runtime = get_runtime()
        call = begin_call(runtime, "openai", "chat", "gpt-4o-mini", "api.openai.com", False, "user-1")
        call.service_tier_key = "openai.response.service_tier"
        call.finish(
            # (a tier that is not text faults pricing before the span's attributes are made)
            usage=USAGE if service_tier is None or type(service_tier) is str else None,
            response_model="gpt-4o-mini-2024-07-18",
            response_id="chatcmpl-1",
            finish_reasons=finish_reasons,
            service_tier=service_tier,
            output_messages=output_messages,
        )
        [span] = telemetry.spans()
        # what the SDK's own `set_attributes` keeps of the same mapping
        [(attrs, plain)] = seen
        assert plain == _plain(attrs)
        reference = telemetry.tracer_provider.get_tracer("test").start_span("reference")
        reference.set_attributes(attrs)
        reference.end()
        [_, kept] = telemetry.spans()
        ended = dict(span.attributes or {})
        assert {key: ended[key] for key in attrs if key in ended} == dict(kept.attributes or {})


class _Model:
    """An SDK-like response object: its declared fields in `__dict__`."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


@pytest.mark.parametrize("details", [None, _Model(), {}])
def test_absent_usage_details_read_as_empty_ones(details: Any) -> None:
    usage = openai_chat_usage(
        _Model(prompt_tokens=10, completion_tokens=5, prompt_tokens_details=details, completion_tokens_details=details)
    )
    assert usage == Usage(input_tokens=10, output_tokens=5)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"cache_creation_input_tokens": 40}, Usage(input_tokens=50, output_tokens=1, cache_write_tokens=40)),
        ({"cache_creation_input_tokens": None}, Usage(input_tokens=10, output_tokens=1)),
        (
            {"cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 4}},
            Usage(input_tokens=17, output_tokens=1, cache_write_tokens=7, cache_write_1h_tokens=4),
        ),
        (
            {"cache_creation_input_tokens": 5, "cache_creation": {"ephemeral_1h_input_tokens": 9}},
            Usage(input_tokens=15, output_tokens=1, cache_write_tokens=5, cache_write_1h_tokens=5),
        ),
        ({"cache_creation_input_tokens": -1}, Usage(input_tokens=10, output_tokens=1, suspect=True)),
        ({"cache_creation_input_tokens": 2.0}, Usage(input_tokens=12, output_tokens=1, cache_write_tokens=2)),
        ({"cache_creation_input_tokens": True}, Usage(input_tokens=10, output_tokens=1, suspect=True)),
    ],
)
def test_anthropic_cache_writes_read_once(fields: dict[str, Any], expected: Usage) -> None:
    assert anthropic_usage({"input_tokens": 10, "output_tokens": 1, **fields}) == expected
