"""A Message Batch's results are metered as the app reads them (`messages.batches.results`).

The real SDK against the fake provider's batch endpoints: each succeeded result is a call with its
exact tokens and its cost at the batch price (half of every token price), attributed to the context
the app reads it in; errored results are not billed and not recorded; reading the results twice
meters them once; no duration is recorded; budgets count the results and never block them.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

import genai_meter
from genai_meter import names
from genai_meter._runtime import configure

from ..conftest import Telemetry
from .test_messages import EXPECTED_COST, INPUT_TOKENS, MESSAGES, MODEL, USAGE, usage_headers

BATCH_USAGE = {**USAGE, "service_tier": "batch"}
BATCH_COST = EXPECTED_COST / 2  # every token class at half price
REQUESTS: Any = [
    {"custom_id": "r0", "params": {"model": MODEL, "max_tokens": 100, "messages": MESSAGES}},
    {"custom_id": "error-1", "params": {"model": MODEL, "max_tokens": 100, "messages": MESSAGES}},
    {"custom_id": "r2", "params": {"model": MODEL, "max_tokens": 100, "messages": MESSAGES}},
]


def _assert_results_metered(telemetry: Telemetry, batch_id: str, user: str | None = "u1") -> None:
    spans = telemetry.spans()
    assert sorted(dict(s.attributes or {})[names.BATCH_CUSTOM_ID] for s in spans) == ["r0", "r2"]
    for span in spans:
        attrs = dict(span.attributes or {})
        assert span.name == f"chat {MODEL}"
        assert attrs[names.BATCH_ID] == batch_id
        assert attrs[names.PROVIDER_NAME] == "anthropic"
        assert attrs[names.RESPONSE_ID].startswith("msg_")
        assert attrs[names.USAGE_INPUT_TOKENS] == INPUT_TOKENS
        assert attrs[names.USAGE_OUTPUT_TOKENS] == 400
        assert attrs[names.COST_USD] == pytest.approx(BATCH_COST, abs=1e-12)
        assert attrs.get(names.USER_ID) == user
        assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 2
    assert telemetry.total(names.REQUESTS.otel_name) == 2
    assert telemetry.total(names.COST.otel_name, model=MODEL) == pytest.approx(2 * BATCH_COST, abs=1e-12)
    assert telemetry.total(names.TOKENS.otel_name, type="input") == 2 * INPUT_TOKENS
    assert telemetry.total(names.TOKENS.otel_name, type="cache_write") == 2 * 1500
    token_points = [point for _attrs, point in telemetry.points(names.TOKEN_USAGE.otel_name)]
    assert sum(point.count for point in token_points) == 4  # input and output of two results
    # no duration: it would be the time the app took to read a line
    assert telemetry.points(names.OPERATION_DURATION.otel_name) == []


def test_batch_results_metered_once(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    batch = claude.messages.batches.create(requests=REQUESTS, extra_headers=usage_headers(BATCH_USAGE))
    assert telemetry.spans() == []  # nothing is billed until it is read
    with genai_meter.attribute(user="u1", feature="nightly-batch"):
        decoder = claude.messages.batches.results(batch.id)
        assert type(decoder).__name__ == "JSONLDecoder"  # the SDK's own object, read through the meter
        results = [next(decoder), *decoder]
        assert [r.result.type for r in sorted(results, key=lambda r: r.custom_id)] == [
            "errored",
            "succeeded",
            "succeeded",
        ]
        assert len(list(claude.messages.batches.results(batch.id))) == 3  # read again: not metered again
    _assert_results_metered(telemetry, batch.id)
    assert {dict(s.attributes or {})[names.FEATURE] for s in telemetry.spans()} == {"nightly-batch"}


async def test_batch_results_async(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    batch = await aclaude.messages.batches.create(requests=REQUESTS, extra_headers=usage_headers(BATCH_USAGE))
    with genai_meter.attribute(user="u1"):
        results = [item async for item in await aclaude.messages.batches.results(batch.id)]
    assert len(results) == 3
    _assert_results_metered(telemetry, batch.id)


def test_beta_batch_results(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    batch = claude.beta.messages.batches.create(requests=REQUESTS, extra_headers=usage_headers(BATCH_USAGE))
    with genai_meter.attribute(user="u1"):
        for _result in claude.beta.messages.batches.results(batch.id):
            pass
    _assert_results_metered(telemetry, batch.id)


@pytest.mark.parametrize("telemetry", ["simple"], indirect=True)
def test_budgets_count_batch_results_and_never_block_them(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    policy = {"name": "one-call", "scope": "user", "period": "day", "max_requests": 1, "mode": "hard"}
    configure(ledger_url="off", budgets={"policies": [policy]})
    batch = claude.messages.batches.create(requests=REQUESTS, extra_headers=usage_headers(BATCH_USAGE))
    with genai_meter.attribute(user="u1"):
        assert len(list(claude.messages.batches.results(batch.id))) == 3  # past the limit: spent already
        [status] = genai_meter.budget_status(user="u1")
        assert (status.requests, round(status.spend_usd, 12)) == (2, round(2 * BATCH_COST, 12))
        with pytest.raises(genai_meter.BudgetExceeded):
            claude.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)


@pytest.mark.parametrize("telemetry", ["batch"], indirect=True)
def test_batch_results_in_the_ledger_once(telemetry: Telemetry, claude: anthropic.Anthropic, tmp_path: Any) -> None:
    import sqlite3

    from genai_meter.ledger._backend import CALLS_TABLE

    path = tmp_path / "ledger.sqlite3"
    configure(ledger_url=f"sqlite:///{path}")
    batch = claude.messages.batches.create(requests=REQUESTS, extra_headers=usage_headers(BATCH_USAGE))
    with genai_meter.attribute(user="u1", tenant="acme"):
        list(claude.messages.batches.results(batch.id))
    assert genai_meter.flush(10)
    with sqlite3.connect(path) as db:
        rows = db.execute(
            f"SELECT user_id, tenant, model, input_tokens, output_tokens, cost_usd, latency_s FROM {CALLS_TABLE}"
        ).fetchall()
    assert [row[:5] for row in rows] == [("u1", "acme", MODEL, INPUT_TOKENS, 400)] * 2
    assert [(round(row[5], 12), row[6]) for row in rows] == [(round(BATCH_COST, 12), 0.0)] * 2


@pytest.mark.parametrize("telemetry", ["simple"], indirect=True)
def test_a_batch_past_a_hard_budget_is_refused_before_it_is_sent(
    telemetry: Telemetry, claude: anthropic.Anthropic, fake_provider: Any
) -> None:
    """Its estimate: each request's prompt (about 4 characters a token) and whole `max_tokens` at
    the batch price; claude-sonnet-4-5's batch output price is $7.50 per million tokens."""
    policies = [
        {"name": "spend", "scope": "user", "period": "day", "limit_usd": 0.02, "mode": "hard"},
        {"name": "calls", "scope": "tenant", "period": "day", "max_requests": 3, "mode": "hard"},
    ]
    configure(ledger_url="off", budgets={"policies": policies})

    def batch(count: int, max_tokens: int) -> Any:
        params = {"model": MODEL, "max_tokens": max_tokens, "messages": MESSAGES}
        return claude.messages.batches.create(
            requests=[{"custom_id": f"r{i}", "params": params} for i in range(count)]
        )

    created = len([r for r in fake_provider.requests if r.path == "/v1/messages/batches"])
    with genai_meter.attribute(user="u1", tenant="acme"):
        with pytest.raises(genai_meter.BudgetExceeded) as refused:
            batch(3, 1000)  # 3 x 1,000 output tokens at $7.50 per million: $0.0225 > $0.02
        assert (refused.value.budget, refused.value.kind) == ("spend", "usd")
        with pytest.raises(genai_meter.BudgetExceeded) as refused:
            batch(4, 10)  # 4 requests, 3 allowed
        assert (refused.value.budget, refused.value.kind) == ("calls", "requests")
        assert len([r for r in fake_provider.requests if r.path == "/v1/messages/batches"]) == created
        accepted = batch(2, 1000)  # $0.015: fits; nothing is reserved
        assert accepted.processing_status == "ended"
        statuses = genai_meter.budget_status(user="u1", tenant="acme")
        assert {s.budget: (s.requests, s.reserved_usd) for s in statuses} == {"spend": (0, 0.0), "calls": (0, 0.0)}
