"""`configure()` at run time keeps what the memory budget store has counted.

The memory store lives in the runtime's guard, and `configure()` builds a new runtime: a new store
counted from zero, so any setting change let a hard budget be spent again in the same period. The
new guard now takes the old guard's memory store over (SQLite and Redis keep their counters anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

import genai_meter
from genai_meter._runtime import configure
from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall, parse_budget_config
from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry, fake_provider_settings
from .conftest import Clock

MESSAGES: Any = [{"role": "user", "content": "hi"}]
BUDGETS = {
    "store": "memory",
    "policies": [
        {"name": "three", "scope": "user", "period": "day", "max_requests": 3, "mode": "hard"},
        {"name": "spend", "scope": "user", "period": "day", "limit_usd": 100, "mode": "soft"},
    ],
}


def _figures(user: str) -> dict[str, tuple[int, float, float]]:
    """budget -> (requests, spend, reserved) for `user`."""
    return {s.budget: (s.requests, s.spend_usd, s.reserved_usd) for s in genai_meter.budget_status(user=user)}


def test_configure_keeps_the_memory_stores_counters(telemetry: Telemetry, fake_provider: FakeProvider) -> None:
    configure(**fake_provider_settings(fake_provider, budgets=BUDGETS))
    client = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0)

    def call(user: str) -> str:
        try:
            with genai_meter.attribute(user=user):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            return "ok"
        except genai_meter.BudgetExceeded:
            return "blocked"

    assert [call("u1") for _ in range(4)] == ["ok", "ok", "ok", "blocked"]
    before = _figures("u1")
    requests, spent, reserved = before["spend"]
    assert (requests, reserved) == (3, 0.0) and spent > 0
    one_call = spent / 3
    # A stream of u2 open across configure(): reserved on the old guard, settled through it after.
    with genai_meter.attribute(user="u2"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = iter(stream)
        next(chunks)

    configure(**fake_provider_settings(fake_provider, budgets=BUDGETS, label_cap=500))  # another setting

    assert _figures("u1") == before
    assert [call("u1") for _ in range(3)] == ["blocked"] * 3
    for _ in chunks:
        pass
    u2 = _figures("u2")
    assert (u2["three"][0], u2["three"][2]) == (1, 0.0)  # one request, its estimate released
    assert u2["spend"][1] == pytest.approx(one_call, abs=1e-12)
    assert _figures("u1") == before


def _guard(clock: Clock, store: str, thresholds: list[float]) -> BudgetGuard:
    config = parse_budget_config(
        {"store": store, "policies": [{"name": "b", "limit_usd": 1, "mode": "soft", "thresholds": thresholds}]}
    )
    return BudgetGuard(config, clock=clock)


def _spend(guard: BudgetGuard, cost: float) -> list[float]:
    reservation = guard.check_and_reserve(PendingCall("openai", "gpt-4o", "chat", estimate_usd=0.01))
    assert reservation is not None
    return [event.threshold_percent for event in guard.settle(reservation, cost)]


def test_handed_over_store_keeps_its_blocks_is_not_closed_and_looks_thresholds_up_again(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _guard(clock, "memory", [80])
    assert _spend(old, 0.6) == []
    old.block("user", "mallory", "abuse")
    store = old.hand_over_store()
    assert store is not None
    closed: list[str] = []
    monkeypatch.setattr(store, "close", lambda: closed.append("closed"))
    config = parse_budget_config(
        {"store": "memory", "policies": [{"name": "b", "limit_usd": 1, "mode": "soft", "thresholds": [50, 80]}]}
    )
    new = BudgetGuard(config, clock=clock, store=store)
    old.close()
    assert closed == []  # the new guard's now
    [status] = new.status()
    assert (status.spend_usd, status.requests) == (pytest.approx(0.6), 1)
    with pytest.raises(BudgetExceeded):
        new.check_and_reserve(PendingCall("openai", "gpt-4o", "chat", user="mallory", estimate_usd=0.01))
    assert _spend(new, 0.1) == [50.0]  # the new guard's 50 %, already passed: fired at once, once
    assert _spend(new, 0.15) == [80.0]
    assert _spend(new, 0.1) == []
    new.close()
    assert closed == ["closed"]


def test_a_shared_store_is_not_handed_over(clock: Clock, tmp_path: Path) -> None:
    guard = _guard(clock, f"sqlite:///{tmp_path / 'budgets.sqlite3'}", [80])
    assert guard.hand_over_store() is None
    assert _spend(guard, 0.5) == []
    guard.close()


def test_instrumenting_with_other_providers_after_configure_keeps_settings_and_counters(
    fake_provider: FakeProvider,
) -> None:
    """An app that configures first and instruments with its own providers after: the runtime is
    rebuilt on the new providers (before, it was dropped and rebuilt from the environment alone, so
    configure()'s settings were lost and the memory store's counters started from zero)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from genai_meter._runtime import get_runtime, reset_runtime
    from genai_meter.instrumentation.openai import OpenAIInstrumentor

    first = InMemorySpanExporter()
    first_provider = TracerProvider()
    first_provider.add_span_processor(SimpleSpanProcessor(first))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=first_provider)
    try:
        configure(**fake_provider_settings(fake_provider, budgets=BUDGETS, label_cap=7))
        client = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0)

        def call() -> None:
            with genai_meter.attribute(user="u1"):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        call()
        call()
        before = _figures("u1")
        assert before["three"][0] == 2
        second = InMemorySpanExporter()
        second_provider = TracerProvider()
        second_provider.add_span_processor(SimpleSpanProcessor(second))
        instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=second_provider)
        assert get_runtime().config.label_cap == 7  # configure()'s setting
        assert _figures("u1") == before  # the memory store's counters
        call()  # the third of three
        with pytest.raises(BudgetExceeded):
            call()
        assert (len(first.get_finished_spans()), len(second.get_finished_spans())) == (2, 2)
    finally:
        instrumentor.uninstrument()
        reset_runtime()
