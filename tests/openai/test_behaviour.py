"""Attribution, label caps, faults, privacy, configuration and uninstrumenting."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import openai
import pytest
from opentelemetry import baggage, context

import genai_meter
from genai_meter import names
from genai_meter._config import ConfigError, load_config
from genai_meter._faults import fault_counts
from genai_meter._runtime import configure

from ..conftest import Telemetry, fake_provider_settings
from .test_chat import MESSAGES, async_client, client, usage_headers


def _users_by_span(telemetry: Telemetry) -> list[tuple[Any, Any, Any]]:
    return sorted(
        (
            (span.attributes or {}).get(names.USER_ID),
            (span.attributes or {}).get(names.TENANT_ID),
            (span.attributes or {}).get(names.FEATURE),
        )
        for span in telemetry.spans()
    )


def test_attribute_context_manager_and_decorator(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)

    @genai_meter.attribute(feature="summarise")
    def summarise() -> None:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())

    with genai_meter.attribute(user="u1", tenant="acme"):
        summarise()
        with genai_meter.attribute(user="u2"):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    assert _users_by_span(telemetry) == [("u1", "acme", "summarise"), ("u2", "acme", None)]
    assert telemetry.total(names.REQUESTS.otel_name, user="u1", tenant="acme", feature="summarise") == 1


def test_attribution_across_threads_and_tasks(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)

    def worker(user: str) -> None:
        with genai_meter.attribute(user=user, tenant=f"t-{user}"):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())

    threads = [threading.Thread(target=worker, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def task_main() -> None:
        async with async_client(fake_provider) as aclient:

            async def one(user: str) -> None:
                with genai_meter.attribute(user=user, tenant=f"t-{user}"):
                    await asyncio.sleep(0)
                    await aclient.chat.completions.create(
                        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
                    )

            await asyncio.gather(*(one(f"task{i}") for i in range(4)))

    asyncio.run(task_main())
    pairs = [(user, tenant) for user, tenant, _ in _users_by_span(telemetry)]
    assert pairs == sorted(
        (u, f"t-{u}") for u in [f"user{i}" for i in range(4)] + [f"task{i}" for i in range(4)]
    )


def test_baggage_and_request_user_fallbacks(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    ctx = baggage.set_baggage(names.BAGGAGE_USER, "from-baggage")
    ctx = baggage.set_baggage(names.BAGGAGE_TENANT, "tenant-b", ctx)
    ctx = baggage.set_baggage(names.BAGGAGE_FEATURE, "feature-b", ctx)
    token = context.attach(ctx)
    try:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    finally:
        context.detach(token)
    sdk.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, user="from-request", extra_headers=usage_headers()
    )
    assert _users_by_span(telemetry) == [
        ("from-baggage", "tenant-b", "feature-b"),
        ("from-request", None, None),
    ]


def test_user_label_cap_and_switch(telemetry: Telemetry, fake_provider: Any) -> None:
    configure(**fake_provider_settings(fake_provider, label_cap=2))
    sdk = client(fake_provider)
    for user in ("a", "b", "c", "d"):
        with genai_meter.attribute(user=user):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    users = sorted(attrs.get("user") for attrs, _ in telemetry.points(names.REQUESTS.otel_name))
    assert users == sorted(["a", "b", names.OVERFLOW_LABEL_VALUE])
    assert telemetry.total(names.REQUESTS.otel_name, user=names.OVERFLOW_LABEL_VALUE) == 2
    # Spans keep the real id; only metric labels are bounded.
    assert [u for u, _, _ in _users_by_span(telemetry)] == ["a", "b", "c", "d"]


def test_user_labels_off(telemetry: Telemetry, fake_provider: Any) -> None:
    configure(**fake_provider_settings(fake_provider, user_labels=False))
    with genai_meter.attribute(user="someone", tenant="acme"):
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
        )
    for attrs, _ in telemetry.points(names.COST.otel_name):
        assert "user" not in attrs and attrs["tenant"] == "acme"


def test_fault_inside_instrumentation_leaves_the_call_working(
    telemetry: Telemetry, fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_meter import _call
    from genai_meter.instrumentation.openai import _wrappers

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(_call.Call, "_record", broken)
    completion = client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
    )
    assert completion.choices[0].message.content
    assert len(telemetry.spans()) == 1, "the span is still ended"
    assert fault_counts()["call.finish"] == 1

    monkeypatch.setattr(_wrappers, "client_info", broken)
    completion = client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
    )
    assert completion.usage is not None
    assert fault_counts()["openai.begin"] == 1
    assert telemetry.total(names.FAULTS.otel_name, where="openai.begin") == 1


def test_no_key_or_content_leaves_the_process(
    telemetry: Telemetry, fake_provider: Any, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    from genai_meter._runtime import get_runtime

    caplog.set_level(logging.DEBUG)
    configure(**fake_provider_settings(fake_provider, ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}"))
    key = "sk-SENTINEL-KEY-123456"
    prompt = "PROMPT-SENTINEL-987"
    sdk = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key=key, max_retries=0)
    with genai_meter.attribute(user="u1"):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], extra_headers=usage_headers()
        )
        list(
            sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                extra_headers=usage_headers(),
            )
        )
        sdk.chat.completions.create(
            model="unknown-model-for-log",
            messages=[{"role": "user", "content": prompt}],
            extra_headers=usage_headers(),
        )
    exported = repr(
        [
            (s.name, dict(s.attributes or {}), [(e.name, dict(e.attributes or {})) for e in s.events])
            for s in telemetry.spans()
        ]
    )
    exported += repr(telemetry.reader.get_metrics_data())
    # genai-meter's own log lines (the SDKs' DEBUG logs echo request bodies themselves; not ours to police)
    exported += "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("genai_meter"))
    runtime = get_runtime()
    assert runtime.ledger is not None and runtime.ledger.flush(10)
    ledger_files = sorted(tmp_path.glob("ledger.sqlite3*"))  # the database and its WAL
    assert ledger_files
    exported += "".join(path.read_bytes().decode("latin-1") for path in ledger_files)
    assert "gpt-4o-mini" in exported, "the ledger's rows are in what was searched"
    assert key not in exported
    assert prompt not in exported
    assert "chunk0" not in exported, "no completion text either"


def test_content_capture_is_opt_in(telemetry: Telemetry, fake_provider: Any) -> None:
    configure(**fake_provider_settings(fake_provider, capture_content=True))
    client(fake_provider).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "capture me"}],
        extra_headers=usage_headers(),
    )
    assert "capture me" in str((telemetry.only_span().attributes or {})[names.INPUT_MESSAGES])


def test_configuration_errors_name_the_key(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="label_capp"):
        load_config({}, label_capp=3)
    with pytest.raises(ConfigError, match="GENAI_METER_LABEL_CAP"):
        load_config({"GENAI_METER_LABEL_CAP": "lots"})
    with pytest.raises(ConfigError, match="GENAI_METER_NO_SUCH_THING"):
        load_config({"GENAI_METER_NO_SUCH_THING": "1"})
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("label_cap: 10\nuser_labels: maybe\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: user_labels: expected true or false"):
        load_config({"GENAI_METER_CONFIG": str(bad_yaml)})
    config = load_config(
        {"GENAI_METER_LABEL_CAP": "7", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    )
    assert config.label_cap == 7 and config.capture_content is True


def test_a_mapping_value_that_is_no_value_is_an_error() -> None:
    """`provider_hosts: {host: null}` once named the provider "None"."""
    with pytest.raises(ConfigError) as caught:
        load_config(provider_hosts={"llm.internal": None})
    assert str(caught.value) == "configure(): provider_hosts: llm.internal: expected a value, got None"


@pytest.mark.parametrize(
    ("value", "capture"),
    [("SPAN_ONLY", True), ("span_and_event", True), ("NO_CONTENT", False), ("EVENT_ONLY", False), ("1", True)],
)
def test_capture_variable_takes_the_otel_genai_modes(value: str, capture: bool) -> None:
    """The variable is shared with the OTel GenAI instrumentations, whose util-genai names modes
    (they were an error, blamed on GENAI_METER_CAPTURE_CONTENT, which nobody set)."""
    assert load_config({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value}).capture_content is capture
    with pytest.raises(ConfigError) as caught:
        load_config({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "sometimes"})
    assert str(caught.value) == (
        "environment: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: expected true or false, got 'sometimes'"
    )


def test_corrupt_pricing_file_is_a_clear_error_at_configuration_time(tmp_path: Any) -> None:
    corrupt = tmp_path / "prices.yaml"
    corrupt.write_text("models:\n  my-model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"prices\.yaml"):
        configure(pricing_file=str(corrupt), ledger_url="off")


def test_uninstrument_restores_the_sdk(fake_provider: Any) -> None:
    from openai.resources.chat.completions import completions

    from genai_meter.instrumentation.openai import OpenAIInstrumentor

    original = completions.Completions.create
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    assert completions.Completions.create is not original
    instrumentor.uninstrument()
    assert completions.Completions.create is original


def test_the_budget_guard_takes_max_series_per_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget gauges' series cap is the configured one (the guard once always took 1,900)."""
    from genai_meter.budgets import BudgetGuard

    given: dict[str, Any] = {}
    real_init = BudgetGuard.__init__

    def init(self: BudgetGuard, *args: Any, **kwargs: Any) -> None:
        given.update(kwargs)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(BudgetGuard, "__init__", init)
    configure(ledger_url="off", max_series_per_metric=500,
              budgets={"store": "memory", "policies": [{"name": "a", "limit_usd": 1}]})
    assert given["max_series"] == 500
