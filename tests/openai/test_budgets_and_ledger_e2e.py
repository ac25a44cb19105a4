"""Budgets and the ledger through the real SDK: a blocked call sends nothing; every call is one row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import genai_meter
from genai_meter import names
from genai_meter._runtime import configure, get_runtime
from genai_meter.ledger import open_ledger

from ..conftest import Telemetry, fake_provider_settings
from .test_chat import EXPECTED_COST, MESSAGES, client, usage_headers

HARD_BUDGET = {
    "store": "memory",
    "policies": [
        {
            "name": "acme-daily",
            "scope": ["tenant"],
            "match": {"tenant": "acme"},
            "period": "day",
            "limit_usd": 0.001,  # two calls of $0.000435 fit, the third is refused
            "mode": "hard",
        }
    ],
}


def test_hard_budget_blocks_before_sending(telemetry: Telemetry, fake_provider: Any) -> None:
    configure(**fake_provider_settings(fake_provider, budgets=HARD_BUDGET))
    sdk = client(fake_provider)
    fired: list[Any] = []
    genai_meter.on_budget_threshold(fired.append)
    sent_before = fake_provider.request_count
    outcomes = []
    with genai_meter.attribute(user="u1", tenant="acme"):
        for _ in range(4):
            try:
                sdk.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, max_tokens=500, extra_headers=usage_headers()
                )
                outcomes.append("sent")
            except genai_meter.BudgetExceeded as exceeded:
                assert exceeded.budget == "acme-daily" and exceeded.scope_value == "acme"
                assert exceeded.limit_usd == 0.001
                assert exceeded.resets_at is not None
                outcomes.append("blocked")
    sent = fake_provider.request_count - sent_before
    assert outcomes.count("sent") == sent, "every blocked call made no HTTP request"
    assert outcomes[:2] == ["sent", "sent"] and outcomes[-1] == "blocked"
    assert telemetry.total(names.REQUESTS.otel_name, outcome="blocked") == outcomes.count("blocked")
    blocked_spans = [s for s in telemetry.spans() if (s.attributes or {})[names.OUTCOME] == "blocked"]
    assert len(blocked_spans) == outcomes.count("blocked")
    assert {e.name for e in blocked_spans[0].events} >= {names.BUDGET_BLOCKED_EVENT}
    # 90 % is never reached: two calls spend 87 %, the third is refused and fires 100 % (the block).
    assert sorted(event.threshold_percent for event in fired) == [75.0, 100.0]
    (status,) = genai_meter.budget_status(tenant="acme")
    assert status.spend_usd == pytest.approx(sent * EXPECTED_COST, abs=1e-9)
    genai_meter._runtime._threshold_callbacks.callbacks.clear()


def test_a_numeric_user_id_is_the_user_its_text_names(telemetry: Telemetry, fake_provider: Any) -> None:
    """`attribute(user=request.user.id)` with an int id: the call is the user "42" a budget policy
    names (it was not matched, so the per-user cap never applied), on the span and in the metrics."""
    policy = {"name": "cap", "scope": "user", "match": {"user": "42"}, "max_requests": 1, "mode": "hard"}
    configure(**fake_provider_settings(fake_provider, budgets={"store": "memory", "policies": [policy]}))
    sdk = client(fake_provider)
    outcomes = []
    for _ in range(2):
        try:
            with genai_meter.attribute(user=42, tenant=7, feature=3):
                sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
            outcomes.append("sent")
        except genai_meter.BudgetExceeded as exceeded:
            outcomes.append(f"blocked by {exceeded.budget} for {exceeded.scope_value!r}")
    assert outcomes == ["sent", "blocked by cap for '42'"]
    attributes = [span.attributes or {} for span in telemetry.spans()]
    assert [(a[names.USER_ID], a[names.TENANT_ID], a[names.FEATURE]) for a in attributes] == [("42", "7", "3")] * 2
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok", user="42", tenant="7", feature="3") == 1
    [status] = genai_meter.budget_status(user=42)
    assert (status.budget, status.scope_value, status.requests) == ("cap", "42", 1)


def test_every_call_is_one_ledger_row(telemetry: Telemetry, fake_provider: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    configure(**fake_provider_settings(fake_provider, ledger_url=url))
    sdk = client(fake_provider)
    with genai_meter.attribute(user="u1", tenant="acme", feature="chat"):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        list(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                         extra_headers=usage_headers()))
        sdk.embeddings.create(model="text-embedding-3-small", input="x",
                              extra_headers={"x-fake-usage": '{"prompt_tokens": 1000}'})
        with pytest.raises(Exception):  # noqa: B017
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-error": "500"})
    ledger_writer = get_runtime().ledger
    assert ledger_writer is not None and ledger_writer.flush(10)
    with open_ledger(url) as ledger:
        rows = list(ledger.export())
    assert len(rows) == 4
    by_outcome = sorted(str(row["outcome"]) for row in rows)
    assert by_outcome == ["error", "ok", "ok", "ok"]
    ok_chat = [row for row in rows if row["operation"] == "chat" and row["outcome"] == "ok"]
    assert [row["cost_usd"] for row in ok_chat] == pytest.approx([EXPECTED_COST] * 2, abs=1e-9)
    assert all(row["user_id"] == "u1" and row["tenant"] == "acme" for row in rows)
    assert {row["input_tokens"] for row in ok_chat} == {1000}


def test_budget_gauges_follow_a_reconfigured_guard(telemetry: Telemetry, fake_provider: Any) -> None:
    for name in ("first-policy", "second-policy"):
        policy = {**HARD_BUDGET["policies"][0], "name": name, "limit_usd": 1.0}  # type: ignore[index]
        configure(**fake_provider_settings(fake_provider, budgets={"store": "memory", "policies": [policy]}))
        with genai_meter.attribute(tenant="acme"):
            client(fake_provider).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
            )
    spend = {attrs["budget"]: value for attrs, value in telemetry.points(names.BUDGET_SPEND.otel_name)}
    limit = {attrs["budget"]: value for attrs, value in telemetry.points(names.BUDGET_LIMIT.otel_name)}
    assert spend == {"second-policy": pytest.approx(EXPECTED_COST, abs=1e-9)}
    assert limit == {"second-policy": 1.0}
