"""The byte meter's shortcuts give what the general ways they replace give.

`event_json` reads an event's JSON with `JSONDecoder.raw_decode` (what `json.loads` runs, without
its Python layers), and `_is_event_stream` reads httpx's header list instead of `Headers.get`: each
is compared here with the way it replaces, on the inputs where they could part.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import pytest

from genai_meter.instrumentation._sse_bytes import _data, _is_event_stream, event_json

_EVENTS = [
    b'data: {"a":1}\n\n',
    b'data:{"a":1}',
    b'data:  {"a": [1, 2]}  \r\n\r\n',
    b"data: \xef\xbb\xbf{}",  # a byte-order mark: refused by `json.loads`
    b'data: {"a":1} {"b":2}',  # two values
    b'data: {"a":1}x',
    b"data: [DONE]\n\n",
    b"data: ",
    b"",
    b"no data line",
    b"data: 1\ndata: 2",
    b'data: {"a":\ndata: 1}\n\n',
    b'data: "\x01"',  # a control character inside a string
    b"data: \xff",  # not UTF-8
    b"data: NaN",
    b"data: -Infinity",
    b"data: 1e999",
    b"data: 12345678901234567890",
    b'data: \t\r{"a":1}\t\n',
    b"data: \x0c{}",  # a form feed is not JSON's white space
    b"data: {}\x0c",
    b'data: {"a":1}\xc2\xa0',  # nor is a no-break space
    b': keep-alive\n\ndata: {"x":"y"}\n\n',
    b"event: e\ndata: null\n\n",
    b'data: {"a":"\\ud800"}',
    b'data: {"a":1,"a":2}',
    b"data: " + b"[" * 50 + b"]" * 50,
]


def _json_loads(event: bytes) -> Any:
    body = _data(event, event.find(b"data:"))
    try:
        return json.loads(body.decode())
    except ValueError:
        return None


@pytest.mark.parametrize("event", _EVENTS)
def test_event_json_is_what_json_loads_reads(event: bytes) -> None:
    expected = _json_loads(event)
    found = event_json(event)
    assert repr(found) == repr(expected)
    assert type(found) is type(expected)


_HEADER_SETS: list[list[tuple[bytes, bytes]]] = [
    [],
    [(b"content-type", b"text/event-stream")],
    [(b"Content-Type", b"text/event-stream; charset=utf-8")],
    [(b"CONTENT-TYPE", b"text/event-stream")],
    [(b"content-type", b"application/json")],
    [(b"content-type", b"text/event")],
    [(b"content-type", b"")],
    [(b"content-type", b"Text/Event-Stream")],
    [(b"date", b"today"), (b"x-request-id", b"r1"), (b"content-type", b"text/event-stream")],
    [(b"content-type", b"text/event-stream"), (b"content-type", b"application/json")],
    [(b"content-type", b"application/json"), (b"content-type", b"text/event-stream")],
    [(b"content-type", b""), (b"content-type", b"text/event-stream")],
    [(b"content-type", b"text/event-stream\xe9"), (b"x-name", b"caf\xc3\xa9")],
    [(b"x-name", b"\xff\xfe"), (b"content-type", b"text/event-stream")],
    [(b"content-types", b"text/event-stream")],
]


@pytest.mark.parametrize("headers_class", [httpx.Headers, httpx2.Headers])
@pytest.mark.parametrize("raw", _HEADER_SETS)
def test_event_stream_header_read_as_headers_get_reads_it(headers_class: Any, raw: list[tuple[bytes, bytes]]) -> None:
    headers = headers_class(raw)
    assert _is_event_stream(headers) is str(headers.get("content-type", "")).startswith("text/event-stream")


def test_other_headers_are_asked_with_get() -> None:
    assert _is_event_stream({"content-type": "text/event-stream"})
    assert not _is_event_stream({"content-type": "application/json"})
    assert not _is_event_stream({})
    assert not _is_event_stream(None)


_REQUESTS: list[dict[str, Any]] = [
    {"model": "m"},
    {"model": "m", "extra_body": None},
    {"model": "m", "extra_body": {}},
    {"model": "m", "extra_body": {"top_k": 3}},
    {"model": "m", "extra_body": {"stream_options": {"continuous_usage_stats": True}}},
    {"model": "m", "extra_body": {"stream_options": None}},
    {"model": "m", "extra_body": "not a dict"},
    {"model": "m", "stream_options": {}},
    {"model": "m", "stream_options": {"include_obfuscation": False}, "extra_body": {"a": 1}},
    {"model": "m", "stream_options": None, "extra_body": {"a": 1}},
]


@pytest.mark.parametrize("kwargs", _REQUESTS)
def test_include_usage_is_asked_for_in_every_request_shape(
    kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the arguments, where the SDK clients' `post` is not wrapped (`test_usage_request`
    covers the usual request, asked in the body, where it is)."""
    from genai_meter.instrumentation.openai import _usage_request
    from genai_meter.instrumentation.openai._wrappers import _include_usage, _with_include_usage

    monkeypatch.setattr(_usage_request.Patched, "on", False)

    before = json.dumps(kwargs)
    sent = _with_include_usage(kwargs)
    assert json.dumps(kwargs) == before  # the caller's own arguments are left as they were
    assert _include_usage(sent) and not _include_usage(kwargs)
    options = kwargs.get("stream_options")
    if isinstance(options, dict):
        assert sent == {**kwargs, "stream_options": {**options, "include_usage": True}}
    else:
        extra = kwargs.get("extra_body")
        extra = extra if isinstance(extra, dict) else {}
        extra_options = extra.get("stream_options")
        extra_options = extra_options if isinstance(extra_options, dict) else {}
        assert sent == {**kwargs, "extra_body": {**extra, "stream_options": {**extra_options, "include_usage": True}}}
