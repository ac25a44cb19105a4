"""Gemini Batch Mode: a done job's inlined responses are metered as the app reads the job
(`batches.get`), at the batch price; creating a job is checked against hard budgets first.

The real google-genai SDK against the fake provider's `:batchGenerateContent` and `batches/{id}`:
each succeeded response is a call with its exact tokens (thinking included in output) and its cost
at gemini-2.5-flash's batch prices, attributed to the context the app reads the job in; failed
requests are not billed; reading the job again meters nothing more; no duration is recorded.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from google import genai
from google.genai import types

import genai_meter
from genai_meter import names
from genai_meter._runtime import configure

from ..conftest import Telemetry

MODEL = "gemini-2.5-flash"
USAGE = {"promptTokenCount": 1000, "candidatesTokenCount": 200, "thoughtsTokenCount": 100, "totalTokenCount": 1300}
# gemini-2.5-flash at the batch tier: $0.15 input, $1.25 output per million; output = candidates + thoughts
BATCH_COST = (1000 * 0.15 + 300 * 1.25) / 1e6


def _request(key: str, text: str = "hello there", max_output: int | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"contents": [{"parts": [{"text": text}], "role": "user"}], "metadata": {"key": key}}
    if max_output is not None:
        request["config"] = {"max_output_tokens": max_output}
    return request


def _config() -> types.CreateBatchJobConfig:
    headers = {"x-fake-usage": json.dumps(USAGE)}
    return types.CreateBatchJobConfig(display_name="nightly", http_options=types.HttpOptions(headers=headers))


def _create(gemini: genai.Client) -> Any:
    return gemini.batches.create(
        model=MODEL, src=[_request("r0"), _request("error-1"), _request("r2")], config=_config()
    )


def _assert_metered(telemetry: Telemetry, job_name: str, user: str | None = "u1") -> None:
    spans = telemetry.spans()
    assert sorted(dict(s.attributes or {})[names.BATCH_CUSTOM_ID] for s in spans) == ["r0", "r2"]
    for span in spans:
        attrs = dict(span.attributes or {})
        assert span.name == f"generate_content {MODEL}"
        assert attrs[names.BATCH_ID] == job_name
        assert attrs[names.PROVIDER_NAME] == "gcp.gemini"
        assert attrs[names.USAGE_INPUT_TOKENS] == 1000
        assert attrs[names.USAGE_OUTPUT_TOKENS] == 300
        assert attrs[names.USAGE_REASONING_OUTPUT_TOKENS] == 100
        assert attrs[names.COST_USD] == pytest.approx(BATCH_COST, abs=1e-15)
        assert attrs.get(names.USER_ID) == user
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 2
    assert telemetry.total(names.COST.otel_name, model=MODEL) == pytest.approx(2 * BATCH_COST, abs=1e-15)
    assert telemetry.total(names.TOKENS.otel_name, type="output") == 600
    assert telemetry.points(names.OPERATION_DURATION.otel_name) == []  # no duration: it was read, not made


def test_a_done_jobs_responses_are_metered_once(telemetry: Telemetry, gemini: genai.Client) -> None:
    job = _create(gemini)
    assert telemetry.spans() == []  # created: nothing billed yet
    with genai_meter.attribute(user="u1"):
        done = gemini.batches.get(name=job.name)
        assert done.state == types.JobState.JOB_STATE_SUCCEEDED
        assert len(done.dest.inlined_responses) == 3
        gemini.batches.get(name=job.name)  # read again: nothing more
    _assert_metered(telemetry, job.name)


async def test_async_get(telemetry: Telemetry, gemini: genai.Client) -> None:
    job = await gemini.aio.batches.create(
        model=MODEL, src=[_request("r0"), _request("error-1"), _request("r2")], config=_config()
    )
    with genai_meter.attribute(user="u1"):
        await gemini.aio.batches.get(name=job.name)
    _assert_metered(telemetry, job.name)


@pytest.mark.parametrize("telemetry", ["batch"], indirect=True)
def test_the_responses_in_the_ledger_at_the_batch_tier(
    telemetry: Telemetry, gemini: genai.Client, tmp_path: Any
) -> None:
    import sqlite3

    path = tmp_path / "ledger.sqlite3"
    configure(ledger_url=f"sqlite:///{path}")
    job = _create(gemini)
    with genai_meter.attribute(user="u1", tenant="acme"):
        gemini.batches.get(name=job.name)
    assert genai_meter.flush(10)
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT user_id, tenant, model, input_tokens, output_tokens, service_tier, cost_usd, latency_s"
            " FROM genai_meter_calls"
        ).fetchall()
    assert [row[:6] for row in rows] == [("u1", "acme", MODEL, 1000, 300, "batch")] * 2
    assert [(round(row[6], 15), row[7]) for row in rows] == [(round(BATCH_COST, 15), 0.0)] * 2


@pytest.mark.parametrize("telemetry", ["simple"], indirect=True)
def test_a_job_past_a_hard_budget_is_refused_before_it_is_sent(
    telemetry: Telemetry, gemini: genai.Client, fake_provider: Any
) -> None:
    """Its estimate: each request's prompt (about 4 characters a token) and whole
    `max_output_tokens` at the batch price ($1.25 per million output tokens)."""
    policies = [
        {"name": "spend", "scope": "user", "period": "day", "limit_usd": 0.002, "mode": "hard"},
        {"name": "calls", "scope": "tenant", "period": "day", "max_requests": 3, "mode": "hard"},
    ]
    configure(ledger_url="off", budgets={"policies": policies})

    def create(count: int, max_output: int) -> Any:
        return gemini.batches.create(
            model=MODEL, src=[_request(f"r{i}", max_output=max_output) for i in range(count)], config=_config()
        )

    def created() -> int:
        return len([r for r in fake_provider.requests if r.path.endswith(":batchGenerateContent")])

    before = created()
    with genai_meter.attribute(user="u1", tenant="acme"):
        with pytest.raises(genai_meter.BudgetExceeded) as refused:
            create(2, 1000)  # 2 x 1,000 output tokens at $1.25 per million: $0.0025 > $0.002
        assert (refused.value.budget, refused.value.kind) == ("spend", "usd")
        with pytest.raises(genai_meter.BudgetExceeded) as refused:
            create(4, 10)  # 4 requests, 3 allowed
        assert (refused.value.budget, refused.value.kind) == ("calls", "requests")
        assert created() == before
        accepted = create(1, 1000)  # $0.00125 and a few input tokens: fits; nothing is reserved
        assert accepted.state == types.JobState.JOB_STATE_PENDING
        assert created() == before + 1


@pytest.mark.parametrize("telemetry", ["simple"], indirect=True)
@pytest.mark.parametrize("form", ["list", "source", "source-dict", "typed-requests"])
def test_every_form_of_inlined_requests_is_checked(telemetry: Telemetry, gemini: genai.Client, form: str) -> None:
    """A list of request dicts, of `InlinedRequest`s, or a `BatchJobSource` holding them (object or
    dict): each is estimated the same way, and refused past the budget."""
    configure(
        ledger_url="off",
        budgets={"policies": [{"name": "spend", "scope": "user", "period": "day", "limit_usd": 0.002, "mode": "hard"}]},
    )
    requests: Any = [_request(f"r{i}", max_output=1000) for i in range(2)]  # $0.0025 of output at most
    if form == "typed-requests":
        requests = [types.InlinedRequest.model_validate(request) for request in requests]
    source: Any = {
        "list": requests,
        "source": types.BatchJobSource(inlined_requests=requests),
        "source-dict": {"inlined_requests": requests},
        "typed-requests": requests,
    }[form]
    with genai_meter.attribute(user="u1"), pytest.raises(genai_meter.BudgetExceeded):
        gemini.batches.create(model=MODEL, src=source, config=_config())


def _create_to_file(gemini: genai.Client) -> Any:
    """A job whose responses the fake provider writes to a file (as the API does for a job whose
    requests came in one)."""
    headers = {"x-fake-usage": json.dumps(USAGE), "x-fake-batch-output": "file"}
    config = types.CreateBatchJobConfig(http_options=types.HttpOptions(headers=headers))
    return gemini.batches.create(model=MODEL, src=[_request("r0"), _request("error-1"), _request("r2")], config=config)


def _assert_file_metered(telemetry: Telemetry, file_name: str) -> None:
    spans = telemetry.spans()
    assert sorted(dict(s.attributes or {})[names.BATCH_CUSTOM_ID] for s in spans) == ["r0", "r2"]
    for span in spans:
        attrs = dict(span.attributes or {})
        assert attrs[names.BATCH_OUTPUT_FILE_ID] == file_name
        assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 300)
        assert attrs[names.COST_USD] == pytest.approx(BATCH_COST, abs=1e-15)
        assert attrs[names.USER_ID] == "u1"
    assert telemetry.total(names.COST.otel_name, model=MODEL) == pytest.approx(2 * BATCH_COST, abs=1e-15)


def test_a_responses_file_is_metered_once_as_it_is_downloaded(telemetry: Telemetry, gemini: genai.Client) -> None:
    job = _create_to_file(gemini)
    with genai_meter.attribute(user="u1"):
        done = gemini.batches.get(name=job.name)
        assert telemetry.spans() == []  # the responses are in the file, not yet read
        data = gemini.files.download(file=done.dest.file_name)
        assert data is not None and len(data.splitlines()) == 3  # the app gets the file as it is
        gemini.files.download(file=done.dest.file_name)  # downloaded again: nothing more
    _assert_file_metered(telemetry, done.dest.file_name)


async def test_async_download(telemetry: Telemetry, gemini: genai.Client) -> None:
    job = _create_to_file(gemini)
    with genai_meter.attribute(user="u1"):
        done = await gemini.aio.batches.get(name=job.name)
        await gemini.aio.files.download(file=done.dest.file_name)
    _assert_file_metered(telemetry, done.dest.file_name)


def test_a_responses_file_downloaded_to_a_path_is_read_back(
    telemetry: Telemetry, gemini: genai.Client, tmp_path: Any
) -> None:
    job = _create_to_file(gemini)
    target = tmp_path / "responses.jsonl"
    with genai_meter.attribute(user="u1"):
        done = gemini.batches.get(name=job.name)
        assert gemini.files.download(file=done.dest.file_name, destination=str(target)) is None
    assert len(target.read_bytes().splitlines()) == 3
    _assert_file_metered(telemetry, done.dest.file_name)


def test_other_downloads_and_broken_lines(telemetry: Telemetry, gemini: genai.Client) -> None:
    """Only a responses file is metered; a line of one that cannot be read is skipped and counted."""
    from genai_meter._faults import fault_counts
    from genai_meter.instrumentation.google_genai._batches import _meter_output

    _meter_output(b"\x00\x00\x00 ftypmp42 a generated video", "files/video", gemini.files)
    _meter_output(b'{"name": "a json file", "response": 1}\n', "files/other", gemini.files)
    assert telemetry.spans() == []
    good = json.dumps({"key": "ok", "response": {"usageMetadata": USAGE, "modelVersion": MODEL}}).encode()
    _meter_output(good + b"\n{not json\n", f"files/mixed-{uuid.uuid4().hex}", gemini.files)  # (seen ids: process-wide)
    [span] = telemetry.spans()
    assert dict(span.attributes or {})[names.COST_USD] == pytest.approx(BATCH_COST, abs=1e-15)
    assert fault_counts().get("google_genai.batch_output") == 1
