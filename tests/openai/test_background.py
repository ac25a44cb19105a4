"""Responses API background mode: the create answers `queued` with no usage; the call is finished by
the retrieve that shows the response done, with its usage and cost, once (it was once finished at the
create as a prompt-only estimate with a missing-usage fault, ~1/1000 of its cost)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import genai_meter
from genai_meter import names
from genai_meter._faults import fault_counts
from genai_meter._runtime import configure
from genai_meter.instrumentation.openai import _background
from genai_meter.instrumentation.openai._background import BACKGROUND

from ..conftest import Telemetry, fake_provider_settings
from .test_chat import async_client, client
from .test_responses_embeddings import HEADERS, RESPONSES_COST, assert_responses_span

POLLS = {**HEADERS, "x-fake-background-polls": "1"}


@pytest.fixture(autouse=True)
def _nothing_held() -> Iterator[None]:
    yield
    BACKGROUND.end_all()


def test_the_retrieve_that_shows_it_done_finishes_the_call(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    queued = sdk.responses.create(model="gpt-4o-mini", input="hi", background=True, extra_headers=POLLS)
    assert (queued.status, queued.usage) == ("queued", None)
    assert sdk.responses.retrieve(queued.id).status == "in_progress"
    assert telemetry.spans() == []  # held open: its usage has not come yet
    done = sdk.responses.retrieve(queued.id)
    assert done.status == "completed" and done.usage is not None
    sdk.responses.retrieve(queued.id)  # polled again: counted once
    assert_responses_span(telemetry, stream=False)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.RESPONSE_ID] == queued.id
    assert names.USAGE_ESTIMATED not in attrs and names.USAGE_MISSING not in attrs
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 1
    assert fault_counts() == {}
    assert len(BACKGROUND) == 0


async def test_async_retrieve_finishes_the_call(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as sdk:
        queued = await sdk.responses.create(model="gpt-4o-mini", input="hi", background=True, extra_headers=HEADERS)
        assert telemetry.spans() == []
        raw = await sdk.responses.with_raw_response.retrieve(queued.id)
        assert raw.parse().status == "completed"  # (a legacy raw response: parsed without await)
    assert_responses_span(telemetry, stream=False)


def test_the_budget_is_charged_when_the_response_is_done(telemetry: Telemetry, fake_provider: Any) -> None:
    policy = {"name": "team", "scope": "tenant", "limit_usd": 10, "period": "month"}
    configure(**fake_provider_settings(fake_provider, budgets={"store": "memory", "policies": [policy]}))
    sdk = client(fake_provider)
    with genai_meter.attribute(user="u1", tenant="acme", feature="research"):
        queued = sdk.responses.create(model="gpt-4o-mini", input="hi", background=True, extra_headers=HEADERS)
    [status] = genai_meter.budget_status(tenant="acme")
    assert status.spend_usd == 0
    sdk.responses.retrieve(queued.id)  # fetched outside the attribute block: the create's attribution counts
    [status] = genai_meter.budget_status(tenant="acme")
    assert status.spend_usd == pytest.approx(RESPONSES_COST, abs=1e-9)
    assert telemetry.total(names.COST.otel_name, user="u1", tenant="acme", feature="research") == pytest.approx(
        RESPONSES_COST, abs=1e-9
    )


def test_a_response_never_seen_done_ends_without_usage(telemetry: Telemetry, fake_provider: Any) -> None:
    queued = client(fake_provider).responses.create(
        model="gpt-4o-mini", input="hi", background=True, extra_headers=HEADERS
    )
    BACKGROUND.end_all()  # what the exit hook does
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.RESPONSE_ID] == queued.id
    assert attrs[names.RESPONSE_FINISH_REASONS] == ("queued",)
    assert names.USAGE_INPUT_TOKENS not in attrs and names.COST_USD not in attrs
    assert telemetry.total(names.COST.otel_name) == 0
    assert fault_counts() == {}  # not a fault: its usage went where this process cannot see it


def test_the_oldest_held_call_ends_past_the_cap(
    telemetry: Telemetry, fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_background, "MAX_HELD", 2)
    sdk = client(fake_provider)
    ids = [
        sdk.responses.create(model="gpt-4o-mini", input="hi", background=True, extra_headers=HEADERS).id
        for _ in range(3)
    ]
    [ended] = telemetry.spans()
    assert (ended.attributes or {})[names.RESPONSE_ID] == ids[0]
    assert len(BACKGROUND) == 2
    sdk.responses.retrieve(ids[2])
    assert telemetry.total(names.COST.otel_name) == pytest.approx(RESPONSES_COST, abs=1e-9)


def test_a_plain_retrieve_records_nothing(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    queued = sdk.responses.create(
        model="gpt-4o-mini", input="hi", background=True,
        extra_headers={**HEADERS, "x-fake-usage": json.dumps({"input_tokens": 10, "output_tokens": 1})},
    )
    sdk.responses.retrieve(queued.id)
    sdk.responses.retrieve(queued.id)
    assert len(telemetry.spans()) == 1
    assert telemetry.total(names.REQUESTS.otel_name) == 1
