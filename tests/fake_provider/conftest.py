"""One fake provider for the whole folder, reset before each test, and real SDK clients aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from genai_meter.fake_provider import FakeProvider


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
async def aoai(fake: FakeProvider) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(fake: FakeProvider) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def aclaude(fake: FakeProvider) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    async with client:
        yield client


@pytest.fixture
def gemini(fake: FakeProvider) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.gemini_base_url))
