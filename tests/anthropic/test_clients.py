"""The provider a call is billed through is told by the SDK client's class: Bedrock, Vertex, first-party."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from genai_meter import names
from genai_meter.fake_provider import FakeProvider
from genai_meter.instrumentation.anthropic._request import provider_for_client

from ..conftest import Telemetry

MESSAGES: Any = [{"role": "user", "content": "hello"}]


def _bedrock(fake_provider: FakeProvider, is_async: bool = False) -> Any:
    cls = anthropic.AsyncAnthropicBedrock if is_async else anthropic.AnthropicBedrock
    return cls(aws_access_key="AKIDEXAMPLE", aws_secret_key="secret", aws_region="us-east-1",
               base_url=fake_provider.anthropic_base_url, max_retries=0)


def _vertex(fake_provider: FakeProvider, is_async: bool = False) -> Any:
    cls = anthropic.AsyncAnthropicVertex if is_async else anthropic.AnthropicVertex
    return cls(access_token="token", region="us-east5", project_id="proj",
               base_url=fake_provider.anthropic_base_url, max_retries=0)


def test_provider_from_client_class(fake_provider: FakeProvider) -> None:
    assert provider_for_client(anthropic.Anthropic(api_key="k")) == "anthropic"
    assert provider_for_client(anthropic.AsyncAnthropic(api_key="k")) == "anthropic"
    assert provider_for_client(_bedrock(fake_provider)) == "aws.bedrock"
    assert provider_for_client(_bedrock(fake_provider, is_async=True)) == "aws.bedrock"
    assert provider_for_client(_vertex(fake_provider)) == "gcp.vertex_ai"
    assert provider_for_client(_vertex(fake_provider, is_async=True)) == "gcp.vertex_ai"


@pytest.mark.parametrize(("make", "provider"), [(_bedrock, "aws.bedrock"), (_vertex, "gcp.vertex_ai")])
def test_platform_call_is_metered_under_its_provider(telemetry: Telemetry, fake_provider: FakeProvider,
                                                     make: Any, provider: str) -> None:
    # The fake serves no Bedrock or Vertex paths: the call fails (or cannot be signed), still one metered call.
    with pytest.raises(Exception):  # noqa: B017
        make(fake_provider).messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == provider
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert telemetry.total(names.REQUESTS.otel_name, provider=provider, outcome="error") == 1


def test_provider_hosts_overrides_the_class(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    from genai_meter._runtime import configure

    configure(ledger_url="off", provider_hosts={"127.0.0.1": "aws.bedrock"})
    claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == "aws.bedrock"
    assert attrs[names.COST_USD] > 0  # Bedrock borrows Anthropic's prices


@pytest.mark.parametrize(
    ("model", "rates"),
    [
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", (3.0, 15.0)),  # the global profile: Anthropic's prices
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", (3.3, 16.5)),  # in-region: 1.1 x
    ],
)
def test_bedrock_is_priced_by_the_id_sent(telemetry: Telemetry, model: str, rates: tuple[float, float]) -> None:
    """Bedrock's answer names the bare model; only the id sent says global or in-region (the global
    profile was once priced at the in-region rate, 10 % high). The fake provider has no Bedrock
    endpoint, so Bedrock's answer comes from an in-process transport (the one thing mocked here)."""
    import json

    import httpx2

    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
              "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
              "usage": {"input_tokens": 100_000, "output_tokens": 100_000}}

    def bedrock(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=json.dumps(answer).encode(), headers={"content-type": "application/json"})

    client = anthropic.AnthropicBedrock(api_key="bedrock-api-key", aws_region="us-east-1", max_retries=0,
                                        http_client=httpx2.Client(transport=httpx2.MockTransport(bedrock)))
    client.messages.create(model=model, max_tokens=10, messages=MESSAGES)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.COST_USD] == pytest.approx((100_000 * rates[0] + 100_000 * rates[1]) / 1e6, abs=1e-9)
