"""Stream usage asked for in the body the SDK built (`_usage_request`): the request the provider gets
is the one `extra_body` made, no other request gets it, and without the clients' `post` wrapped
`extra_body` still asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

from genai_meter.instrumentation.openai import _usage_request
from genai_meter.instrumentation.openai._wrappers import _AskingUsage, _with_include_usage

from ..conftest import Telemetry
from .test_chat import EXPECTED_COST, MESSAGES, assert_metered, async_client, client, usage_headers


def _body(fake_provider: Any) -> dict[str, Any]:
    body = fake_provider.requests[-1].body
    assert isinstance(body, dict)
    return body


def test_the_usual_stream_asks_in_the_body_the_sdk_built(telemetry: Telemetry, fake_provider: Any) -> None:
    assert _usage_request.Patched.on
    assert type(_with_include_usage({"model": "m"})) is _AskingUsage
    for _chunk in client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
    ):
        pass
    body = _body(fake_provider)
    assert body["stream_options"] == {"include_usage": True}
    assert body["stream"] is True and body["model"] == "gpt-4o-mini" and body["messages"] == MESSAGES
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


async def test_the_usual_async_stream_asks_in_the_body(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
        )
        async for _chunk in stream:
            pass
    assert _body(fake_provider)["stream_options"] == {"include_usage": True}
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_no_other_request_is_asked(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    for _chunk in sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "stream_options" not in _body(fake_provider)
    with suppress_instrumentation():
        for _chunk in sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass
    assert "stream_options" not in _body(fake_provider)
    # a caller's own stream options get `include_usage` by the argument, as before
    for _chunk in sdk.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_obfuscation": False}
    ):
        pass
    assert _body(fake_provider)["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_an_sdk_error_before_sending_leaves_no_mark(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    with pytest.raises(TypeError):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, no_such_argument=1)
    assert not _usage_request._ASKING.get()
    with suppress_instrumentation():
        for _chunk in sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass
    assert "stream_options" not in _body(fake_provider)


@pytest.fixture
def post_not_wrapped() -> Iterator[None]:
    _usage_request.uninstrument()
    try:
        yield
    finally:
        _usage_request.instrument()


def test_without_the_clients_post_extra_body_asks(
    telemetry: Telemetry, fake_provider: Any, post_not_wrapped: None
) -> None:
    assert not _usage_request.Patched.on
    assert isinstance(vars(openai._base_client.SyncAPIClient)["post"], type(lambda: None))
    for _chunk in client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
    ):
        pass
    assert _body(fake_provider)["stream_options"] == {"include_usage": True}
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_uninstrument_restores_the_clients_post(fake_provider: Any) -> None:
    from genai_meter.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    assert _usage_request.Patched.on
    instrumentor.uninstrument()
    assert not _usage_request.Patched.on
    for cls in (openai._base_client.SyncAPIClient, openai._base_client.AsyncAPIClient):
        assert callable(vars(cls)["post"]) and not hasattr(vars(cls)["post"], "__wrapped__")
