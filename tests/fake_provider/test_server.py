"""Server mechanics: lifecycle, recording, counting under concurrency, keep-alive, routing errors."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest

from genai_meter.fake_provider import FakeProvider, RecordedRequest


def test_urls_and_lifecycle() -> None:
    provider = FakeProvider()
    with pytest.raises(RuntimeError, match="not started"):
        _ = provider.base_url
    with provider:
        assert provider.base_url == f"http://127.0.0.1:{provider.port}"
        assert provider.openai_base_url == provider.base_url + "/v1"
        assert provider.anthropic_base_url == provider.base_url
        assert provider.gemini_base_url == provider.base_url
        assert provider.port > 0
        url = provider.openai_base_url
        assert httpx2.post(f"{url}/chat/completions", json={"model": "m", "messages": []}).status_code == 200
    with pytest.raises(httpx2.ConnectError):
        httpx2.post(f"{url}/chat/completions", json={"model": "m", "messages": []})


def test_stop_closes_idle_keep_alive_connections() -> None:
    provider = FakeProvider().start()
    client = httpx2.Client(base_url=provider.openai_base_url)
    assert client.post("/chat/completions", json={"model": "m"}).status_code == 200
    provider.stop()  # must not hang on the pooled connection's handler thread
    client.close()


def test_keep_alive_for_plain_and_streamed_answers(fake: FakeProvider) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        for stream in (False, True, False):
            body = json.dumps({"model": "m", "messages": [], "stream": stream})
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            payload = reply.read()
            assert reply.status == 200
            assert not reply.will_close  # the server keeps the connection open
            if stream:
                assert reply.getheader("Transfer-Encoding") == "chunked"
                assert payload.endswith(b"data: [DONE]\n\n")
            else:
                assert reply.getheader("Content-Length") == str(len(payload))
        first_socket = conn.sock
        conn.request("POST", "/v1/embeddings", json.dumps({"model": "e", "input": "abcd"}))
        assert json.loads(conn.getresponse().read())["usage"]["prompt_tokens"] == 1
        assert conn.sock is first_socket
    finally:
        conn.close()
    assert fake.request_count == 4


def test_requests_are_recorded_and_reset(oai: openai.OpenAI, fake: FakeProvider) -> None:
    oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Custom": "yes"},
    )
    [recorded] = fake.requests
    assert isinstance(recorded, RecordedRequest)
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["x-custom"] == "yes"
    assert recorded.body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    fake.reset()
    assert fake.requests == [] and fake.request_count == 0


def test_request_count_is_exact_under_concurrency(fake: FakeProvider) -> None:
    def call(i: int) -> int:
        with openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0) as client:
            stream = i % 2 == 0
            if stream:
                return sum(1 for _ in client.chat.completions.create(model="m", messages=[], stream=True))
            client.chat.completions.create(model="m", messages=[])
            return 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(40)))
    assert results.count(5) == 20  # every stream complete: role, 3 content, finish
    assert fake.request_count == 40
    assert len(fake.requests) == 40


def test_admin_gets_and_unknown_routes_do_not_count(fake: FakeProvider) -> None:
    assert httpx2.post(f"{fake.base_url}/v1/nope", json={}).status_code == 404
    assert httpx2.get(f"{fake.base_url}/v1/organization/costs").status_code == 401
    assert fake.request_count == 0
    assert [r.path for r in fake.requests] == ["/v1/nope", "/v1/organization/costs"]


def test_non_json_request_body_is_400(fake: FakeProvider) -> None:
    reply = httpx2.post(f"{fake.openai_base_url}/chat/completions", content=b"{oops")
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-fake-error", "200"),
        ("x-fake-chunks", "many"),
        ("x-fake-malformed", "xml"),
        ("x-fake-usage", "[1]"),
        ("x-fake-write-bytes", "0"),
        ("x-fake-sse-newline", "cr"),
        ("x-fake-stream-usage", "everywhere"),
    ],
)
def test_bad_control_headers_name_the_header(fake: FakeProvider, header: str, value: str) -> None:
    reply = httpx2.post(f"{fake.base_url}/v1/messages", json={"model": "m"}, headers={header: value})
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"] == "error" and header in body["error"]["message"]


def test_stream_written_in_pieces_with_crlf_lines(fake: FakeProvider) -> None:
    body = {"model": "m", "stream": True}
    with httpx2.Client(base_url=fake.openai_base_url) as client:
        plain = client.post("/chat/completions", json=body).content
        with client.stream(
            "POST", "/chat/completions", json=body, headers={"x-fake-write-bytes": "5", "x-fake-sse-newline": "crlf"}
        ) as reply:
            pieces = list(reply.iter_raw())
    joined = b"".join(pieces)
    assert joined.replace(b"\r\n", b"\n").count(b"\n\n") == plain.count(b"\n\n")
    assert joined.count(b"\r\n\r\n") == plain.count(b"\n\n")
    assert len(pieces) > plain.count(b"\n\n")  # the client read events in several pieces


def test_zero_chunks_stream_and_drop(fake: FakeProvider) -> None:
    with httpx2.Client(base_url=fake.openai_base_url) as client:
        text = client.post(
            "/chat/completions", json={"model": "m", "stream": True}, headers={"x-fake-chunks": "0"}
        ).text
        chunks = [json.loads(line[6:]) for line in text.split("\n\n") if line and line != "data: [DONE]"]
        assert len(chunks) == 2  # role and finish only
        with pytest.raises(httpx2.RemoteProtocolError):
            client.post(
                "/chat/completions",
                json={"model": "m", "stream": True},
                headers={"x-fake-drop-after": "9"},  # beyond the last chunk: cut right after it
            )


def test_retry_after_ms_keeps_sdk_retries_fast(fake: FakeProvider) -> None:
    reply = httpx2.post(
        f"{fake.openai_base_url}/chat/completions", json={"model": "m"}, headers={"x-fake-error": "429"}
    )
    assert (reply.headers["retry-after"], reply.headers["retry-after-ms"]) == ("0", "1")
    reply = httpx2.post(
        f"{fake.openai_base_url}/chat/completions",
        json={"model": "m"},
        headers={"x-fake-error": "429", "x-fake-retry-after": "2"},
    )
    assert (reply.headers["retry-after"], reply.headers["retry-after-ms"]) == ("2", "2000")
