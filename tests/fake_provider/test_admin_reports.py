"""Admin usage/cost reports: shapes the SDK parses, figures built from served calls, auth, overrides."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from genai_meter.fake_provider import FakeProvider

DAY1 = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp())
DAY2 = DAY1 + 86400
MESSAGES = [{"role": "user", "content": "hi"}]


def chat(client: openai.OpenAI, model: str, at: int, usage: dict[str, Any]) -> None:
    client.chat.completions.create(
        model=model,
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers={"x-fake-usage": json.dumps(usage), "x-fake-time": str(at)},
    )


@pytest.fixture
def admin(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", admin_api_key="sk-admin-test", max_retries=0
    )


def seed_openai(oai: openai.OpenAI) -> None:
    chat(
        oai,
        "gpt-4o",
        DAY1 + 10,
        {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 400}},
    )
    chat(oai, "gpt-4o", DAY1 + 20, {"prompt_tokens": 500, "completion_tokens": 50})
    chat(oai, "gpt-4o-mini", DAY1 + 30, {"prompt_tokens": 200, "completion_tokens": 20})
    oai.responses.create(
        model="gpt-4o",
        input="x",
        extra_headers={
            "x-fake-time": str(DAY2 + 5),
            "x-fake-usage": json.dumps(
                {
                    "input_tokens": 300,
                    "output_tokens": 30,
                    "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 50},
                }
            ),
        },
    )
    # Neither an error nor a dropped stream is billed.
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-error": "429"})  # type: ignore[arg-type]
    with pytest.raises(openai.APIConnectionError):
        list(
            oai.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,  # type: ignore[arg-type]
                extra_headers={"x-fake-drop-after": "1", "x-fake-time": str(DAY1)},
            )
        )


def test_openai_usage_grouped_by_model(oai: openai.OpenAI, admin: openai.OpenAI) -> None:
    seed_openai(oai)
    page = admin.admin.organization.usage.completions(
        start_time=DAY1, end_time=DAY2 + 86400, group_by=["model"]
    )
    assert page.object == "page" and page.has_more is False
    assert [(b.start_time, b.end_time) for b in page.data] == [(DAY1, DAY2), (DAY2, DAY2 + 86400)]
    day1 = {r.model: r for r in page.data[0].results}  # type: ignore[union-attr]
    assert set(day1) == {"gpt-4o", "gpt-4o-mini"}
    big = day1["gpt-4o"]
    assert (big.input_tokens, big.output_tokens, big.num_model_requests) == (1500, 150, 2)  # type: ignore[union-attr]
    assert (big.input_cached_tokens, big.input_uncached_tokens) == (400, 1100)  # type: ignore[union-attr]
    day2 = page.data[1].results[0]
    assert (day2.input_tokens, day2.input_cached_tokens, day2.input_cache_write_tokens) == (300, 100, 50)  # type: ignore[union-attr]
    assert day2.input_uncached_tokens == 150  # type: ignore[union-attr]


def test_openai_usage_ungrouped_and_empty_buckets(oai: openai.OpenAI, admin: openai.OpenAI) -> None:
    seed_openai(oai)
    page = admin.admin.organization.usage.completions(start_time=DAY1 - 86400, end_time=DAY2)
    assert [len(b.results) for b in page.data] == [0, 1]
    only = page.data[1].results[0]
    assert only.model is None  # type: ignore[union-attr]
    assert (only.input_tokens, only.num_model_requests) == (1700, 3)  # type: ignore[union-attr]


def test_openai_costs_by_line_item(oai: openai.OpenAI, admin: openai.OpenAI) -> None:
    seed_openai(oai)
    page = admin.admin.organization.usage.costs(start_time=DAY1, end_time=DAY2, group_by=["line_item"])
    lines = {r.line_item: r for r in page.data[0].results}  # type: ignore[union-attr]
    assert set(lines) == {
        "gpt-4o, input",
        "gpt-4o, cached input",
        "gpt-4o, output",
        "gpt-4o-mini, input",
        "gpt-4o-mini, output",
    }
    # Flat fake prices: $1 / $0.10 / $4 per million input / cached / output tokens.
    assert lines["gpt-4o, input"].amount.value == pytest.approx(1100 * 1e-6, abs=1e-12)  # type: ignore[union-attr]
    assert lines["gpt-4o, cached input"].amount.value == pytest.approx(400 * 0.1e-6, abs=1e-12)  # type: ignore[union-attr]
    assert lines["gpt-4o, output"].amount.value == pytest.approx(150 * 4e-6, abs=1e-12)  # type: ignore[union-attr]
    assert lines["gpt-4o, output"].quantity == 150  # type: ignore[union-attr]
    total = admin.admin.organization.usage.costs(start_time=DAY1, end_time=DAY2).data[0].results
    assert len(total) == 1
    expected = (1100 + 200) * 1e-6 + 400 * 0.1e-6 + 170 * 4e-6
    assert total[0].amount.value == pytest.approx(expected, abs=1e-12)  # type: ignore[union-attr]
    assert total[0].amount.currency == "usd"  # type: ignore[union-attr]


def test_openai_admin_requires_a_key(fake: FakeProvider) -> None:
    reply = httpx2.get(f"{fake.openai_base_url}/organization/usage/completions", params={"start_time": DAY1})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "invalid_api_key"


def test_openai_missing_start_time_is_400(fake: FakeProvider) -> None:
    reply = httpx2.get(f"{fake.openai_base_url}/organization/costs", headers={"Authorization": "Bearer k"})
    assert reply.status_code == 400
    assert "start_time" in reply.json()["error"]["message"]


def test_set_report_overrides(fake: FakeProvider, admin: openai.OpenAI) -> None:
    body = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": DAY1,
                "end_time": DAY2,
                "results": [
                    {"object": "organization.costs.result", "amount": {"value": 12.5, "currency": "usd"}}
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    fake.set_report("/v1/organization/costs", body)
    page = admin.admin.organization.usage.costs(start_time=DAY1)
    assert page.data[0].results[0].amount.value == 12.5  # type: ignore[union-attr]
    fake.reset()
    assert admin.admin.organization.usage.costs(start_time=DAY1, end_time=DAY2).data[0].results == []


ANTHROPIC_USAGE = {
    "input_tokens": 1000,
    "output_tokens": 200,
    "cache_read_input_tokens": 3000,
    "cache_creation_input_tokens": 500,
    "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 200},
}


def seed_anthropic(claude: anthropic.Anthropic) -> None:
    for model, at in (("claude-a", DAY1 + 1), ("claude-a", DAY1 + 2), ("claude-b", DAY2 + 3)):
        claude.messages.create(
            model=model,
            max_tokens=5,
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={"x-fake-usage": json.dumps(ANTHROPIC_USAGE), "x-fake-time": str(at)},
        )
    # A stream counts like a non-stream call.
    with claude.messages.stream(
        model="claude-b",
        max_tokens=5,
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers={
            "x-fake-usage": json.dumps({"input_tokens": 10, "output_tokens": 1}),
            "x-fake-time": "2026-03-02T12:00:00Z",
        },
    ) as stream:
        stream.until_done()


def anthropic_get(fake: FakeProvider, path: str, params: list[tuple[str, str]]) -> httpx2.Response:
    return httpx2.get(
        f"{fake.anthropic_base_url}{path}",
        params=params,
        headers={"x-api-key": "sk-ant-admin-test", "anthropic-version": "2023-06-01"},
    )


def test_anthropic_usage_report(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    seed_anthropic(claude)
    reply = anthropic_get(
        fake,
        "/v1/organizations/usage_report/messages",
        [
            ("starting_at", "2026-03-01T00:00:00Z"),
            ("ending_at", "2026-03-03T00:00:00Z"),
            ("group_by[]", "model"),
        ],
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["has_more"] is False and body["next_page"] is None
    assert [(b["starting_at"], b["ending_at"]) for b in body["data"]] == [
        ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"),
        ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"),
    ]
    [day1] = body["data"][0]["results"]
    assert day1["model"] == "claude-a"
    assert day1["uncached_input_tokens"] == 2000
    assert day1["cache_read_input_tokens"] == 6000
    assert day1["cache_creation"] == {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400}
    assert day1["output_tokens"] == 400
    assert day1["server_tool_use"] == {"web_search_requests": 0}
    [day2] = body["data"][1]["results"]
    assert (day2["model"], day2["uncached_input_tokens"], day2["output_tokens"]) == ("claude-b", 1010, 201)


def test_anthropic_cost_report_in_cents(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    seed_anthropic(claude)
    params = [("starting_at", "2026-03-01T00:00:00Z"), ("ending_at", "2026-03-02T00:00:00Z")]
    [row] = anthropic_get(fake, "/v1/organizations/cost_report", params).json()["data"][0]["results"]
    # 2 calls x (1000*$1 + 3000*$0.10 + 300*$1.25 + 200*$2 + 200*$4) per MTok = 2 x $0.002875
    assert row["currency"] == "USD"
    assert row["amount"] == "0.575"  # cents
    assert row["model"] is None
    rows = anthropic_get(
        fake, "/v1/organizations/cost_report", [*params, ("group_by[]", "description")]
    ).json()["data"][0]["results"]
    by_type = {r["token_type"]: r["amount"] for r in rows}
    assert by_type == {
        "uncached_input_tokens": "0.2",
        "cache_read_input_tokens": "0.06",
        "cache_creation.ephemeral_5m_input_tokens": "0.075",
        "cache_creation.ephemeral_1h_input_tokens": "0.08",
        "output_tokens": "0.16",
    }
    assert {r["model"] for r in rows} == {"claude-a"}


def test_anthropic_admin_requires_a_key(fake: FakeProvider) -> None:
    reply = httpx2.get(
        f"{fake.anthropic_base_url}/v1/organizations/cost_report",
        params={"starting_at": "2026-03-01T00:00:00Z"},
    )
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "authentication_error"
