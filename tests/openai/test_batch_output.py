"""An OpenAI Batch's output file is metered as the app downloads it (`files.content`).

The real SDK's whole round trip against the fake provider (upload, create, retrieve, download):
each answered request is a call with its exact tokens and its cost at the batch price (half the
standard one), attributed to the context the app downloads in; failed requests are not recorded;
downloading twice meters once; any other file passes untouched and meters nothing.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import openai
import pytest

import genai_meter
from genai_meter import names

from ..conftest import Telemetry
from .test_chat import MESSAGES, USAGE, async_client, client, usage_headers

# gpt-4o-mini's batch prices in the bundled data (USD per million tokens): input 0.075, output 0.30,
# and no batch price for cached input, so the 200 cached tokens are priced as batch input.
BATCH_COST = 1000 * 0.075e-6 + 500 * 0.30e-6


def _line(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}
CHAT_LINES = [_line(custom_id, "/v1/chat/completions", CHAT) for custom_id in ("a", "error-b", "c")]


def _upload(sdk: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    data = "\n".join(json.dumps(line) for line in lines).encode()
    return sdk.files.create(file=("batch.jsonl", io.BytesIO(data)), purpose="batch").id


def _assert_chat_results(telemetry: Telemetry, output_file_id: str) -> None:
    spans = telemetry.spans()
    assert sorted(dict(s.attributes or {})[names.BATCH_CUSTOM_ID] for s in spans) == ["a", "c"]
    for span in spans:
        attrs = dict(span.attributes or {})
        assert span.name == "chat gpt-4o-mini"
        assert attrs[names.BATCH_OUTPUT_FILE_ID] == output_file_id
        assert attrs[names.USAGE_INPUT_TOKENS] == 1000
        assert attrs[names.USAGE_OUTPUT_TOKENS] == 500
        assert attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] == 200
        assert attrs[names.COST_USD] == pytest.approx(BATCH_COST, abs=1e-12)
        assert attrs[names.OPENAI_RESPONSE_SERVICE_TIER] == "batch"
        assert attrs[names.USER_ID] == "u1"
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 2
    assert telemetry.total(names.COST.otel_name) == pytest.approx(2 * BATCH_COST, abs=1e-12)
    assert telemetry.points(names.OPERATION_DURATION.otel_name) == []


def test_batch_output_metered_once(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    input_file = _upload(sdk, CHAT_LINES)
    batch = sdk.batches.create(
        input_file_id=input_file,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers=usage_headers(USAGE),
    )
    assert telemetry.spans() == []  # nothing is metered before the output is read
    done = sdk.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id
    with genai_meter.attribute(user="u1"):
        output = sdk.files.content(done.output_file_id)
        assert len(output.text.splitlines()) == 3
        assert sdk.files.content(done.output_file_id).content == output.content  # again: metered once
        assert sdk.files.content(input_file).content.startswith(b'{"custom_id"')  # not an output: untouched
    _assert_chat_results(telemetry, done.output_file_id)


async def test_batch_output_async(telemetry: Telemetry, fake_provider: Any) -> None:
    input_file = _upload(client(fake_provider), CHAT_LINES)
    sdk = async_client(fake_provider)
    batch = await sdk.batches.create(
        input_file_id=input_file,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers=usage_headers(USAGE),
    )
    with genai_meter.attribute(user="u1"):
        await sdk.files.content(str(batch.output_file_id))
    _assert_chat_results(telemetry, str(batch.output_file_id))


def test_batch_output_of_every_endpoint(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    lines = [
        _line("chat", "/v1/chat/completions", CHAT),
        _line("responses", "/v1/responses", {"model": "gpt-4o-mini", "input": "hello there"}),
        _line("embeddings", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "hello there"}),
    ]
    batch = sdk.batches.create(
        input_file_id=_upload(sdk, lines), endpoint="/v1/chat/completions", completion_window="24h"
    )
    output = sdk.files.content(str(batch.output_file_id))
    reported = {}
    for line in output.text.splitlines():
        result = json.loads(line)
        reported[result["custom_id"]] = result["response"]["body"]["usage"]
    spans = {dict(s.attributes or {})[names.BATCH_CUSTOM_ID]: dict(s.attributes or {}) for s in telemetry.spans()}
    assert {key: attrs[names.OPERATION_NAME] for key, attrs in spans.items()} == {
        "chat": "chat",
        "responses": "chat",
        "embeddings": "embeddings",
    }
    assert spans["chat"][names.USAGE_INPUT_TOKENS] == reported["chat"]["prompt_tokens"]
    assert spans["responses"][names.USAGE_INPUT_TOKENS] == reported["responses"]["input_tokens"]
    assert spans["responses"][names.USAGE_OUTPUT_TOKENS] == reported["responses"]["output_tokens"]
    assert spans["embeddings"][names.USAGE_INPUT_TOKENS] == reported["embeddings"]["prompt_tokens"]
    # text-embedding-3-small: $0.02 per million tokens, $0.01 through the Batch API
    embedding_cost = reported["embeddings"]["prompt_tokens"] * 0.01e-6
    assert spans["embeddings"][names.COST_USD] == pytest.approx(embedding_cost, abs=1e-15)
    assert spans["embeddings"][names.OPENAI_RESPONSE_SERVICE_TIER] == "batch"


def test_a_broken_line_is_skipped_and_counted(telemetry: Telemetry, fake_provider: Any) -> None:
    """An output file with a line that is not JSON: the app gets the file as it is, the other lines
    are metered, the fault is counted."""
    from genai_meter._faults import fault_counts

    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500},
    }
    good = {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": "ok", "response": {"status_code": 200, "body": body}}
    data = (json.dumps(good) + "\n{broken\n").encode()
    sdk = client(fake_provider)
    file_id = sdk.files.create(file=("output.jsonl", io.BytesIO(data)), purpose="batch_output").id
    assert sdk.files.content(file_id).content == data
    [span] = telemetry.spans()
    assert dict(span.attributes or {})[names.COST_USD] == pytest.approx(BATCH_COST, abs=1e-12)
    assert fault_counts() == {"openai.batch_output": 1}


@pytest.mark.parametrize("telemetry", ["simple"], indirect=True)
@pytest.mark.parametrize("upload", ["bytes", "file object", "path"])
def test_a_batch_past_a_hard_budget_is_refused_before_it_is_created(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Any, upload: str
) -> None:
    """The input file uploaded here is estimated (each request's prompt and whole output limit at
    the batch price: gpt-4o-mini's batch output is $0.30 per million tokens) and the batch checked
    before it is created; the upload itself is unchanged."""
    from genai_meter._runtime import configure

    from ..conftest import fake_provider_settings

    policy = {"name": "spend", "scope": "user", "period": "day", "limit_usd": 0.01, "mode": "hard"}
    configure(**fake_provider_settings(fake_provider, ledger_url="off", budgets={"policies": [policy]}))
    sdk = client(fake_provider)

    def upload_batch(max_tokens: int) -> str:
        body = {**CHAT, "max_completion_tokens": max_tokens}
        data = "\n".join(json.dumps(_line(f"r{i}", "/v1/chat/completions", body)) for i in range(3)).encode()
        file: Any = ("batch.jsonl", data)
        if upload == "file object":
            file = io.BytesIO(data)
        elif upload == "path":
            path = tmp_path / f"batch-{max_tokens}.jsonl"
            path.write_bytes(data)
            file = path
        file_id = sdk.files.create(file=file, purpose="batch").id
        assert sdk.files.content(file_id).content == data  # sent as it was
        return file_id

    def created() -> int:
        return len([r for r in fake_provider.requests if r.path == "/v1/batches"]) - before

    before = 0
    before = created()
    with genai_meter.attribute(user="u1"):
        too_big = upload_batch(20_000)  # 3 x 20,000 output tokens at $0.30 per million: $0.018
        with pytest.raises(genai_meter.BudgetExceeded) as refused:
            sdk.batches.create(input_file_id=too_big, endpoint="/v1/chat/completions", completion_window="24h")
        assert (refused.value.budget, refused.value.kind) == ("spend", "usd")
        assert created() == 0
        fits = upload_batch(5_000)  # $0.0045
        sdk.batches.create(input_file_id=fits, endpoint="/v1/chat/completions", completion_window="24h")
        assert created() == 1
