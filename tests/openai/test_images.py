"""`images.generate` metered with the real SDK against the fake provider: GPT Image models' token
usage priced exactly (whole and streamed, sync and async); a DALL·E answer, with no usage, is
counted with no tokens and no cost."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import genai_meter
from genai_meter import names
from genai_meter.fake_provider._openai import _PIXEL_PNG

from ..conftest import Telemetry
from .test_chat import async_client, client

USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
    "output_tokens": 4160,
    "total_tokens": 4210,
}
# gpt-image-1 in the bundled data (USD per million tokens): input 5, output 40
COST = 50 * 5e-6 + 4160 * 40e-6
HEADERS = {"x-fake-usage": json.dumps(USAGE)}


def _assert_image_call(telemetry: Telemetry, *, stream: bool = False) -> None:
    span = telemetry.only_span()
    attrs = dict(span.attributes or {})
    assert span.name == "generate_image gpt-image-1"
    assert attrs[names.OPERATION_NAME] == "generate_image"
    assert attrs[names.REQUEST_STREAM] is stream
    assert attrs[names.USAGE_INPUT_TOKENS] == 50
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 4160
    assert attrs[names.COST_USD] == pytest.approx(COST, abs=1e-12)
    assert attrs[names.USER_ID] == "u1"
    assert "a red bicycle" not in repr(attrs)  # the prompt is not recorded
    assert telemetry.total(names.COST.otel_name, model="gpt-image-1") == pytest.approx(COST, abs=1e-12)
    assert telemetry.total(names.TOKENS.otel_name, type="output") == 4160
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 1


def test_images_generate(telemetry: Telemetry, fake_provider: Any) -> None:
    with genai_meter.attribute(user="u1"):
        result = client(fake_provider).images.generate(
            model="gpt-image-1", prompt="a red bicycle", extra_headers=HEADERS
        )
    assert result.data and result.usage is not None and result.usage.output_tokens == 4160
    _assert_image_call(telemetry)


async def test_images_generate_async(telemetry: Telemetry, fake_provider: Any) -> None:
    with genai_meter.attribute(user="u1"):
        await async_client(fake_provider).images.generate(
            model="gpt-image-1", prompt="a red bicycle", extra_headers=HEADERS
        )
    _assert_image_call(telemetry)


def test_images_generate_streamed(telemetry: Telemetry, fake_provider: Any) -> None:
    with genai_meter.attribute(user="u1"):
        stream = client(fake_provider).images.generate(
            model="gpt-image-1", prompt="a red bicycle", stream=True, partial_images=1, extra_headers=HEADERS
        )
        assert [event.type for event in stream] == ["image_generation.partial_image", "image_generation.completed"]
    _assert_image_call(telemetry, stream=True)


def test_dall_e_without_usage_is_counted_without_cost(telemetry: Telemetry, fake_provider: Any) -> None:
    client(fake_provider).images.generate(
        model="dall-e-3", prompt="a red bicycle", extra_headers={"x-fake-no-usage": "absent"}
    )
    attrs = dict(telemetry.only_span().attributes or {})
    assert names.COST_USD not in attrs and names.USAGE_INPUT_TOKENS not in attrs
    assert telemetry.total(names.REQUESTS.otel_name) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_images_edit(telemetry: Telemetry, fake_provider: Any, stream: bool) -> None:
    """An edit sends the images as multipart form data; its usage counts their tokens as input."""
    pixel = base64.b64decode(_PIXEL_PNG)
    with genai_meter.attribute(user="u1"):
        answer: Any = client(fake_provider).images.edit(
            model="gpt-image-1",
            image=("in.png", pixel, "image/png"),
            prompt="a red bicycle",
            extra_headers=HEADERS,
            **({"stream": True} if stream else {}),
        )
        if stream:
            list(answer)
    span = telemetry.only_span()
    assert span.name == "generate_image gpt-image-1"
    _assert_image_call(telemetry, stream=stream)
