"""genai-meter's Anthropic instrumentor beside OpenLLMetry's, in either order: every call metered once
(the `messages.stream` helper included), the peer noticed and named once, and `uninstrument()` taking
off genai-meter's own layer only, wherever it sits, including the copies the SDK caches."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
import wrapt
from anthropic.resources.messages.messages import Messages

from genai_meter import names
from genai_meter.fake_provider import FakeProvider
from genai_meter.instrumentation import _patching
from genai_meter.instrumentation.anthropic import AnthropicInstrumentor

from ..conftest import Telemetry, instrumented

MODEL = "claude-sonnet-4-5"
MESSAGES: Any = [{"role": "user", "content": "hi"}]
HEADERS = {"x-fake-usage": json.dumps({"input_tokens": 1000, "output_tokens": 400})}
COST = 1000 * 3e-6 + 400 * 15e-6  # claude-sonnet-4-5: 3 / 15 per million


@pytest.fixture
def peer() -> Iterator[Any]:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as LLMetryAnthropic

    instrumentor = LLMetryAnthropic()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def warnings_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_patching, "_warned", set())


def own_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans() if s.instrumentation_scope and s.instrumentation_scope.name == "genai_meter"]


def layers() -> list[str]:
    """The modules of the instrumentations' wrappers on `Messages.create`, outermost first."""
    found, current = [], Messages.__dict__["create"]
    while isinstance(current, wrapt.BaseObjectProxy):
        found.append(current._self_wrapper.__module__)
        current = current.__wrapped__
    return found


def reinstrument(instrumentor: AnthropicInstrumentor, telemetry: Telemetry) -> None:
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)


@pytest.mark.parametrize("peer_first", [True, False])
async def test_stream_helper_metered_once_beside_openllmetry(
    fake_provider: FakeProvider, peer: Any, peer_first: bool
) -> None:
    """OpenLLMetry returns its own object around the SDK's stream manager: the request is metered all
    the same (sync and async), once."""
    if peer_first:  # as under the launcher: entry point `anthropic` loads before `genai_meter_anthropic`
        peer.instrument()
    with instrumented(AnthropicInstrumentor(), ledger_url="off") as telemetry:
        if not peer_first:
            peer.instrument()
        client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
        with client.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS) as stream:
            stream.get_final_message()
        aclient = anthropic.AsyncAnthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
        async with aclient.messages.stream(
            model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS
        ) as astream:
            await astream.get_final_message()
        with client.beta.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS) as beta:
            beta.get_final_message()
        spans = own_spans(telemetry)
        assert len(spans) == 3
        for span in spans:
            assert (span.attributes or {})[names.COST_USD] == pytest.approx(COST, abs=1e-12)
        assert telemetry.total(names.REQUESTS.otel_name) == 3
        assert telemetry.total(names.COST.otel_name) == pytest.approx(3 * COST, abs=1e-12)
        assert telemetry.total(names.FAULTS.otel_name) == 0


def test_peer_is_named_once(peer: Any, warnings_reset: None, caplog: pytest.LogCaptureFixture) -> None:
    peer.instrument()
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        instrumentor = AnthropicInstrumentor()
        instrumentor.instrument()
        instrumentor.uninstrument()
        instrumentor.instrument()
        instrumentor.uninstrument()
    warned = [r.getMessage() for r in caplog.records if "already wrapped by" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "opentelemetry.instrumentation.anthropic" in warned[0]


def test_no_warning_when_alone(warnings_reset: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        instrumentor = AnthropicInstrumentor()
        instrumentor.instrument()
        instrumentor.uninstrument()
    assert not [r for r in caplog.records if "already wrapped by" in r.getMessage()]


def test_uninstrument_takes_off_its_own_layer_under_a_peer(fake_provider: FakeProvider, peer: Any) -> None:
    original = Messages.__dict__["create"]
    ours = AnthropicInstrumentor()
    with instrumented(ours, ledger_url="off") as telemetry:
        peer.instrument(tracer_provider=telemetry.tracer_provider)
        assert layers() == [
            "opentelemetry.instrumentation.anthropic",
            "genai_meter.instrumentation.anthropic._wrappers",
        ]
        ours.uninstrument()
        assert layers() == ["opentelemetry.instrumentation.anthropic"]  # the peer's stays, ours is gone
        client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
        client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
        assert own_spans(telemetry) == []
        assert [s.instrumentation_scope.name for s in telemetry.spans() if s.instrumentation_scope] == [
            "opentelemetry.instrumentation.anthropic"
        ]
        peer.uninstrument()
        assert Messages.__dict__["create"] is original


def test_peer_removed_first_then_ours(peer: Any) -> None:
    """OTel's `unwrap` of an outer peer leaves genai-meter's layer bound to no instance on the class
    (wrapt 2): it is still recognised, and the SDK's own method comes back."""
    original = Messages.__dict__["create"]
    ours = AnthropicInstrumentor()
    ours.instrument()
    peer.instrument()
    peer.uninstrument()
    ours.uninstrument()
    assert Messages.__dict__["create"] is original


def test_uninstrument_alone_restores_the_sdk_exactly() -> None:
    from anthropic.lib.streaming._messages import MessageStreamManager

    before = {name: Messages.__dict__[name] for name in ("create", "parse", "stream")}
    init = MessageStreamManager.__dict__["__init__"]
    ours = AnthropicInstrumentor()
    ours.instrument()
    ours.uninstrument()
    assert {name: Messages.__dict__[name] for name in before} == before
    assert MessageStreamManager.__dict__["__init__"] is init


def test_raw_response_cached_while_instrumented_passes_through_after(fake_provider: FakeProvider) -> None:
    """`with_raw_response` keeps the bound method it found: after `uninstrument()` it no longer meters."""
    client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
    ours = AnthropicInstrumentor()
    with instrumented(ours, ledger_url="off") as telemetry:
        client.messages.with_raw_response.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
        assert len(own_spans(telemetry)) == 1
        ours.uninstrument()
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS
        )
        assert raw.parse().usage.output_tokens == 400
        assert len(own_spans(telemetry)) == 1
        # Instrumenting again puts the same layer back: the cached copy meters again, once (it once
        # stayed a pass-through, so that client's raw calls went unmetered for good).
        reinstrument(ours, telemetry)
        client.messages.with_raw_response.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
        assert len(own_spans(telemetry)) == 2
        fresh = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
        fresh.messages.with_raw_response.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
        assert len(own_spans(telemetry)) == 3


def test_layer_under_a_plain_wrapper_is_left_switched_off(fake_provider: FakeProvider) -> None:
    """A wrapper that is not a wrapt proxy cannot be relinked: genai-meter's layer stays under it as a
    pass-through, and is switched on again (not doubled) by the next `instrument()`."""
    original = Messages.__dict__["create"]
    ours = AnthropicInstrumentor()
    try:
        with instrumented(ours, ledger_url="off") as telemetry:
            inner = Messages.__dict__["create"]
            calls: list[int] = []

            @functools.wraps(inner)
            def plain(*args: Any, **kwargs: Any) -> Any:
                calls.append(1)
                return inner(*args, **kwargs)

            Messages.create = plain  # type: ignore[method-assign]
            client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
            ours.uninstrument()
            client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
            assert own_spans(telemetry) == [] and calls == [1]
            reinstrument(ours, telemetry)
            client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
            assert len(own_spans(telemetry)) == 1 and calls == [1, 1]
            assert Messages.__dict__["create"] is plain
    finally:
        Messages.create = original  # type: ignore[method-assign]


def test_peer_left_bound_on_the_class_lets_go_of_ours(fake_provider: FakeProvider, peer: Any) -> None:
    """Layers: a third wrapper, OpenLLMetry's, genai-meter's. OTel's `unwrap` of the third leaves
    OpenLLMetry's layer bound to no instance on the class, which binds through OpenLLMetry's own
    wrapper: genai-meter's `uninstrument()` takes its layer out of both."""
    from opentelemetry.instrumentation.utils import unwrap

    original = Messages.__dict__["create"]
    ours = AnthropicInstrumentor()
    with instrumented(ours, ledger_url="off") as telemetry:
        peer.instrument(tracer_provider=telemetry.tracer_provider)
        wrapt.wrap_function_wrapper(
            Messages, "create", lambda wrapped, _instance, args, kwargs: wrapped(*args, **kwargs)
        )
        unwrap(Messages, "create")
        left = Messages.__dict__["create"]
        assert isinstance(left, wrapt.BoundFunctionWrapper)
        ours.uninstrument()
        assert left.__wrapped__ is original and left._self_parent.__wrapped__ is original
        reinstrument(ours, telemetry)
        client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0)
        client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers=HEADERS)
        assert len(own_spans(telemetry)) == 1
    peer.uninstrument()
    # OTel's `unwrap` of the peer leaves it bound on the class
    Messages.create = original  # type: ignore[method-assign]
