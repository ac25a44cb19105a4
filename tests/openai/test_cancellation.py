"""A call cancelled (asyncio timeout, `task.cancel()`) while genai-meter or the SDK reads the response:
the call ends once, as an error of that kind, as it does when the cancellation comes earlier, and the
app gets its exception unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genai_meter import names

from ..conftest import Telemetry
from .test_chat import MESSAGES, async_client, usage_headers


def assert_cancelled_call(telemetry: Telemetry) -> None:
    span = telemetry.only_span()
    attrs = span.attributes or {}
    assert span.end_time is not None
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == "CancelledError"
    assert telemetry.total(names.REQUESTS.otel_name, outcome=names.OUTCOME_ERROR) == 1


async def test_timeout_while_a_raw_response_body_is_read(telemetry: Telemetry, fake_provider: Any) -> None:
    """`with_streaming_response`: genai-meter's `parse()` reads the body after the headers came. A
    timeout there once left the call open (span never ended, budget reservation held, no ledger row)."""
    async with async_client(fake_provider) as sdk:

        async def call() -> None:
            async with sdk.chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers(**{"x-fake-body-delay-ms": "3000"})
            ) as response:
                await response.parse()

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(call(), 0.5)
    assert_cancelled_call(telemetry)


async def test_stream_cancelled_mid_read(telemetry: Telemetry, fake_provider: Any) -> None:
    """A chat stream's task cancelled while the SDK waits for its next bytes: once recorded as ok."""
    first = asyncio.Event()
    async with async_client(fake_provider) as sdk:

        async def consume() -> None:
            stream = await sdk.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True,
                extra_headers=usage_headers(**{"x-fake-chunks": "200", "x-fake-write-bytes": "1"}),
            )
            async for _chunk in stream:
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert_cancelled_call(telemetry)
