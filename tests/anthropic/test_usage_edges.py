"""Anthropic usage that is missing, absurd, or served at a priced service tier."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from genai_meter import names
from genai_meter._faults import fault_counts

from ..conftest import Telemetry

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

MODEL = "claude-sonnet-4-5"
IN, OUT = 3e-6, 15e-6  # claude-sonnet-4-5, USD per token; its batch tier is half that
PROMPT = "x" * 4000  # about 1000 tokens at 4 characters a token
MESSAGES: Any = [{"role": "user", "content": PROMPT}]


def attrs_of(telemetry: Telemetry) -> dict[str, Any]:
    return dict(telemetry.only_span().attributes or {})


@pytest.mark.parametrize("missing", ["null", "absent"])
def test_response_without_usage_is_estimated(telemetry: Telemetry, claude: anthropic.Anthropic, missing: str) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=500,
        messages=MESSAGES,
        system="s" * 400,
        extra_headers={"x-fake-no-usage": missing, "x-fake-content": "y" * 400},
    )
    assert message.content[0].text == "y" * 400  # type: ignore[union-attr]
    attrs = attrs_of(telemetry)
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert attrs[names.USAGE_MISSING] is True
    assert attrs[names.USAGE_ESTIMATED] is True
    assert attrs[names.USAGE_INPUT_TOKENS] == 1100  # prompt and system: 4400 characters
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 100
    assert attrs[names.COST_USD] == pytest.approx(1100 * IN + 100 * OUT, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_ESTIMATED
    assert fault_counts().get("usage.missing") == 1


def test_absurd_count_is_suspect_not_priced(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    usage = {"input_tokens": 2**64, "output_tokens": 10}
    claude.messages.create(
        model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers={"x-fake-usage": json.dumps(usage)}
    )
    attrs = attrs_of(telemetry)
    assert attrs[names.USAGE_SUSPECT] is True
    assert attrs[names.USAGE_INPUT_TOKENS] == 0
    assert attrs[names.COST_USD] == pytest.approx(10 * OUT, abs=1e-12)  # not 2**64 * 3e-6 (about $5.5e13)
    assert telemetry.total(names.COST.otel_name) < 1


@pytest.mark.parametrize(("tier", "factor"), [("batch", 0.5), ("standard", 1.0), ("priority", 1.0)])
def test_service_tier_reported_is_priced(
    telemetry: Telemetry, claude: anthropic.Anthropic, tier: str, factor: float
) -> None:
    """Anthropic reports the tier it served at; the bundled prices have a batch tier (half price) for its
    models, and none for priority (standard rates)."""
    usage = {"input_tokens": 1000, "output_tokens": 100, "service_tier": tier}
    claude.messages.create(
        model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers={"x-fake-usage": json.dumps(usage)}
    )
    assert attrs_of(telemetry)[names.COST_USD] == pytest.approx(factor * (1000 * IN + 100 * OUT), abs=1e-12)


def test_service_tier_of_a_stream(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    usage = {"input_tokens": 1000, "output_tokens": 100, "service_tier": "batch"}
    with claude.messages.stream(
        model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers={"x-fake-usage": json.dumps(usage)}
    ) as stream:
        stream.get_final_message()
    assert attrs_of(telemetry)[names.COST_USD] == pytest.approx(0.5 * (1000 * IN + 100 * OUT), abs=1e-12)


def test_stream_failing_before_its_first_event_has_no_estimate(
    telemetry: Telemetry, claude: anthropic.Anthropic
) -> None:
    """A malformed first event: nothing of the response arrived, so nothing is estimated or charged."""
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a malformed event
        for _event in claude.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-fake-chunks": "0", "x-fake-malformed": "sse"},
        ):
            pass
    attrs = attrs_of(telemetry)
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert names.COST_USD not in attrs and names.USAGE_INPUT_TOKENS not in attrs
    assert telemetry.total(names.COST.otel_name) == 0


def test_parse_whose_content_fails_validation_keeps_its_usage(
    telemetry: Telemetry, claude: anthropic.Anthropic
) -> None:
    """`messages.parse` validates the message after it arrived and was billed: the app gets the
    SDK's error, and the call records that error with the message's tokens and cost."""
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: int

    usage = {"input_tokens": 1000, "output_tokens": 400}
    with pytest.raises(Exception) as raised:
        claude.messages.parse(
            model=MODEL, max_tokens=500, messages=MESSAGES, output_format=Answer,
            extra_headers={"x-fake-usage": json.dumps(usage), "x-fake-content": '{"answer": "not a number"}'},
        )
    attrs = attrs_of(telemetry)
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == type(raised.value).__qualname__
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 400)
    assert attrs[names.COST_USD] == pytest.approx(1000 * IN + 400 * OUT, abs=1e-12)
    assert telemetry.total(names.COST.otel_name) == pytest.approx(1000 * IN + 400 * OUT, abs=1e-12)
    assert fault_counts() == {}


def test_raw_response_the_sdk_cannot_parse_is_the_calls_error(
    telemetry: Telemetry, claude: anthropic.Anthropic, caplog: pytest.LogCaptureFixture
) -> None:
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers={"x-fake-malformed": "json"}
    )
    with pytest.raises(Exception) as raised:
        raw.parse()  # the app gets the SDK's own error, as uninstrumented
    attrs = attrs_of(telemetry)
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == type(raised.value).__qualname__
    assert names.COST_USD not in attrs
    assert fault_counts() == {}  # the provider's answer, not genai-meter's fault
    assert not [r for r in caplog.records if r.name.startswith("genai_meter")]


def test_model_and_id_that_are_not_text_are_left_out(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    """A (broken) answer whose model or id is a number: neither becomes a span attribute of another
    type or a metric label; the call is priced at the requested model."""
    usage = {"input_tokens": 1000, "output_tokens": 400}
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, messages=MESSAGES,
        extra_headers={"x-fake-usage": json.dumps(usage), "x-fake-fields": json.dumps({"model": 123, "id": 42})},
    )
    raw.parse()
    attrs = attrs_of(telemetry)
    assert names.RESPONSE_MODEL not in attrs and names.RESPONSE_ID not in attrs
    assert attrs[names.COST_USD] == pytest.approx(1000 * IN + 400 * OUT, abs=1e-12)
    points = telemetry.points(names.TOKEN_USAGE.otel_name)
    assert points and all(labels.get(names.RESPONSE_MODEL) is None for labels, _ in points)


@pytest.mark.parametrize("stream", [False, True])
def test_fast_mode_is_priced_at_the_fast_tier(telemetry: Telemetry, claude: anthropic.Anthropic, stream: bool) -> None:
    """`speed: "fast"` in the usage: claude-opus-4-8 at its fast prices (input 10, output 50 per
    million tokens, against 5 and 25)."""
    usage = {"input_tokens": 1000, "output_tokens": 100, "service_tier": "standard", "speed": "fast"}
    request: Any = {"model": "claude-opus-4-8", "max_tokens": 5, "messages": MESSAGES}
    headers = {"x-fake-usage": json.dumps(usage)}
    if stream:
        with claude.messages.stream(**request, extra_headers=headers) as helper:
            helper.get_final_message()
    else:
        claude.messages.create(**request, extra_headers=headers)
    assert attrs_of(telemetry)[names.COST_USD] == pytest.approx((1000 * 10 + 100 * 50) / 1e6, abs=1e-12)


def test_stream_usage_is_merged_the_same_from_every_shape_of_usage() -> None:
    """`_merge` reads an SDK model's `__dict__` where it holds every field; the general reader
    (`field`) reads the same from each shape: a model, one with undeclared fields, JSON, an object."""
    from types import SimpleNamespace

    from anthropic.types import Usage as SdkUsage

    from genai_meter._usage import field
    from genai_meter.instrumentation.anthropic import _observers

    plain = SdkUsage(input_tokens=10, output_tokens=5, cache_read_input_tokens=3, cache_creation_input_tokens=None)
    newer = SdkUsage.model_validate({"input_tokens": 10, "output_tokens": 5, "iterations": [{"input_tokens": 1}]})
    decoded = {"input_tokens": 10, "output_tokens": 5, "cache_creation": {"ephemeral_1h_input_tokens": 2}}
    shapes = [plain, newer, decoded, SimpleNamespace(**decoded)]
    for usage in shapes:
        merged: dict[str, Any] = {}
        _observers._merge(merged, usage)
        expected = {name: field(usage, name) for name in _observers._USAGE_FIELDS if field(usage, name) is not None}
        assert merged == expected
    merged = {}
    _observers._merge(merged, newer)
    assert merged["iterations"] == field(newer, "iterations") is not None  # an undeclared field is read too
