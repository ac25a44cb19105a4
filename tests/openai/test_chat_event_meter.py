"""The byte-level Chat Completions meter on every wire style a server may send, fed directly.

The meter learns the stream's line ends from its first line and its JSON spacing from its first
data event; these tests pin that down for LF, CR LF and CR lines, compact and spaced JSON, a comment
before the first event, and every way of cutting the body into chunks (one piece, one byte at a
time, and every single cut point).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from genai_meter.instrumentation.openai._events import ChatEventMeter

USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}


class _Call:
    """Stands in for the metered call: keeps what the meter ends it with."""

    def __init__(self) -> None:
        self.finished: list[dict[str, Any]] = []

    def finish(self, **outcome: Any) -> None:
        self.finished.append(outcome)

    def finish_reading(self, read: Callable[[], dict[str, Any]]) -> None:
        self.finish(**read())


def _body(newline: str, spaced: bool, comment: bool) -> tuple[bytes, bytes]:
    """(what the server sends with include_usage injected, what the caller must see)."""
    colon, comma = (": ", ", ") if spaced else (":", ",")

    def chunk(delta: str, finish: str) -> str:
        return (
            f'{{"id"{colon}"chatcmpl-1"{comma}"object"{colon}"chat.completion.chunk"{comma}'
            f'"model"{colon}"gpt-4o-mini-2024-07-18"{comma}"choices"{colon}[{{"index"{colon}0{comma}'
            f'"delta"{colon}{delta}{comma}"finish_reason"{colon}{finish}}}]'
        )

    null_usage = f'{comma}"usage"{colon}null'
    usage = f'{{"prompt_tokens"{colon}1200{comma}"completion_tokens"{colon}300{comma}"total_tokens"{colon}1500}}'
    events = [chunk(f'{{"content"{colon}"w{i} "}}', "null") for i in range(3)]
    events.append(chunk("{}", '"stop"'))
    usage_event = (
        f'{{"id"{colon}"chatcmpl-1"{comma}"object"{colon}"chat.completion.chunk"{comma}'
        f'"model"{colon}"gpt-4o-mini-2024-07-18"{comma}"choices"{colon}[]{comma}"usage"{colon}{usage}}}'
    )
    prefix = f": keep-alive{newline}{newline}" if comment else ""
    sent = prefix + "".join(f"data: {e}{null_usage}}}{newline}{newline}" for e in events)
    sent += f"data: {usage_event}{newline}{newline}data: [DONE]{newline}{newline}"
    seen = prefix + "".join(f"data: {e}}}{newline}{newline}" for e in events)
    seen += f"data: [DONE]{newline}{newline}"
    return sent.encode(), seen.encode()


def _meter(pieces: list[bytes], single_choice: bool = False) -> tuple[bytes, _Call]:
    call = _Call()
    meter = ChatEventMeter(call, True, lambda: 0, single_choice=single_choice)  # type: ignore[arg-type]
    passed = b""
    for piece in pieces:
        passed += meter.feed(piece)
    passed += meter.flush()
    meter.finish(None)
    return passed, call


def _assert_metered(call: _Call) -> None:
    [outcome] = call.finished
    usage = outcome["usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (1200, 300, False)
    assert outcome["response_model"] == "gpt-4o-mini-2024-07-18"
    assert outcome["response_id"] == "chatcmpl-1"
    assert outcome["finish_reasons"] == ("stop",)


STYLES = [
    pytest.param("\n", False, False, id="lf-compact"),
    pytest.param("\r\n", False, False, id="crlf-compact"),
    pytest.param("\r", False, False, id="cr-compact"),
    pytest.param("\n", True, False, id="lf-spaced"),
    pytest.param("\r\n", True, True, id="crlf-spaced-comment-first"),
    pytest.param("\n", False, True, id="lf-compact-comment-first"),
]


@pytest.mark.parametrize(("newline", "spaced", "comment"), STYLES)
def test_whole_body_in_one_chunk(newline: str, spaced: bool, comment: bool) -> None:
    sent, seen = _body(newline, spaced, comment)
    passed, call = _meter([sent])
    assert passed == seen
    _assert_metered(call)


@pytest.mark.parametrize(("newline", "spaced", "comment"), STYLES)
def test_one_byte_at_a_time(newline: str, spaced: bool, comment: bool) -> None:
    sent, seen = _body(newline, spaced, comment)
    passed, call = _meter([sent[i : i + 1] for i in range(len(sent))])
    assert passed == seen
    _assert_metered(call)


@pytest.mark.parametrize(("newline", "spaced", "comment"), STYLES)
def test_every_cut_point(newline: str, spaced: bool, comment: bool) -> None:
    """Two pieces, cut at every byte: inside a CR LF, between the two line ends of a blank line,
    inside the first event before its style is known."""
    sent, seen = _body(newline, spaced, comment)
    for cut in range(1, len(sent)):
        passed, call = _meter([sent[:cut], sent[cut:]])
        assert passed == seen, cut
        _assert_metered(call)


def test_a_body_without_a_final_blank_line_is_still_read() -> None:
    sent, _seen = _body("\n", False, False)
    passed, call = _meter([sent.rstrip(b"\n")])
    assert passed.endswith(b"data: [DONE]")
    _assert_metered(call)


def test_read_ahead_lasts_until_the_next_complete_event() -> None:
    """After a finish reason the meter asks for more bytes until the next event is complete: the
    usage event, however it is split; or another choice's content (n > 1), where it stops asking."""
    sent, _seen = _body("\n", False, False)
    finish_end = sent.index(b'"finish_reason":"stop"')
    finish_end = sent.index(b"\n\n", finish_end) + 2
    usage_end = sent.index(b"\n\n", finish_end) + 2
    meter = ChatEventMeter(_Call(), True, lambda: 0)  # type: ignore[arg-type]
    meter.feed(sent[:finish_end])
    assert meter.read_ahead
    meter.feed(sent[finish_end : finish_end + 40])  # a piece of the usage event
    assert meter.read_ahead and meter.usage_payload is None
    meter.feed(sent[finish_end + 40 : usage_end])
    assert not meter.read_ahead and meter.usage_payload is not None

    other_choice = b'data: {"id":"chatcmpl-1","choices":[{"index":1,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
    meter = ChatEventMeter(_Call(), True, lambda: 0)  # type: ignore[arg-type]
    meter.feed(sent[:finish_end])
    assert meter.read_ahead
    meter.feed(other_choice)
    assert not meter.read_ahead and meter.usage_payload is None

    meter = ChatEventMeter(_Call(), True, lambda: 0)  # type: ignore[arg-type]
    meter.feed(sent[:finish_end] + other_choice)  # the finish is not the last event: nothing to wait for
    assert not meter.read_ahead


@pytest.mark.parametrize("usage_expected", [True, False])
def test_text_of_a_stream_cut_before_its_usage_is_counted_on_either_path(usage_expected: bool) -> None:
    """With usage asked for, the text is counted only if the usage never comes (the regions wait
    for the end, at most `_UNCOUNTED_LIMIT` bytes of them); without, as it passes. Either way a
    stream cut before its usage event is estimated from every piece of text it showed."""
    from genai_meter.instrumentation.openai import _events

    piece = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"' + b"x" * 1000 + b'"}}]}\n\n'
    role = b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    pieces = 200  # about 200 KB: past the limit three times over
    call = _Call()
    meter = ChatEventMeter(call, True, lambda: 40, usage_expected=usage_expected)  # type: ignore[arg-type]
    meter.feed(role)
    for _ in range(pieces):
        meter.feed(piece)
        assert meter.uncounted_bytes <= _events._UNCOUNTED_LIMIT
    meter.finish(None)  # the connection dropped: no usage event, no finish
    [outcome] = call.finished
    usage = outcome["usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (10, pieces, True)


def test_text_is_not_counted_when_the_usage_comes() -> None:
    sent, _seen = _body("\n", False, False)
    meter = ChatEventMeter(_Call(), True, lambda: 0)  # type: ignore[arg-type]
    meter.feed(sent)
    meter.flush()
    meter.finish(None)
    assert meter.text_events == 0  # the usage came: the regions were never searched for text


def test_stream_failed_before_any_event_has_no_estimate() -> None:
    """Nothing of the response arrived (the connection dropped before the first event): nothing
    was billed, so the call ends with its error and no tokens; one event is enough for an estimate."""
    call = _Call()
    meter = ChatEventMeter(call, True, lambda: 4000)  # type: ignore[arg-type]
    error = ConnectionError("dropped")
    meter.finish(error)
    [outcome] = call.finished
    assert (outcome["usage"], outcome["error"]) == (None, error)

    call = _Call()
    meter = ChatEventMeter(call, True, lambda: 4000)  # type: ignore[arg-type]
    meter.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
    meter.finish(error)
    [outcome] = call.finished
    usage = outcome["usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (1000, 0, True)


@pytest.mark.parametrize(("newline", "spaced", "comment"), STYLES)
def test_one_choice_searched_from_the_end_meters_the_same(newline: str, spaced: bool, comment: bool) -> None:
    """A request for one choice finds the run's last finish event searching back from the end: the
    bytes passed on and the outcome are those of the forward search, however the body is cut, and
    with a finish reason sent twice (the last one wins either way)."""
    sent, seen = _body(newline, spaced, comment)
    first_finish = b'"finish_reason": "length"' if spaced else b'"finish_reason":"length"'
    twice = sent.replace(b'"finish_reason": null' if spaced else b'"finish_reason":null', first_finish, 1)
    for body in (sent, twice):
        for pieces in ([body], [body[i : i + 1] for i in range(len(body))], [body[:97], body[97:]]):
            forward, forward_call = _meter(pieces)
            backward, backward_call = _meter(pieces, single_choice=True)
            assert backward == forward
            assert backward_call.finished == forward_call.finished
            _assert_metered(backward_call)
    assert _meter([sent], single_choice=True)[0] == seen


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        pytest.param('"stop"', ("stop",), id="plain"),
        pytest.param('"content_filter"', ("content_filter",), id="underscore"),
        pytest.param('"a\\"b"', None, id="escaped-quote-not-read"),
        pytest.param('"x\\\\y"', None, id="escaped-backslash-not-read"),
        pytest.param('""', None, id="empty"),
    ],
)
def test_a_finish_reason_is_read_as_the_pattern_reads_it(finish: str, expected: tuple[str, ...] | None) -> None:
    """The one finish event's reason, read with searches in the usual case and with the pattern
    otherwise: a reason with escapes or none at all is not made up."""
    sent, _seen = _body("\n", False, False)
    _passed, call = _meter([sent.replace(b'"finish_reason":"stop"', b'"finish_reason":' + finish.encode())])
    assert call.finished[0]["finish_reasons"] == expected


def test_two_finish_reasons_in_one_event_are_both_read() -> None:
    """A server that sends two choices' finishes in one event (with `n` unset): both reasons, in order."""
    sent, _seen = _body("\n", False, False)
    two = b'"finish_reason":"stop"}, {"index":1,"delta":{},"finish_reason":"length"'
    _passed, call = _meter([sent.replace(b'"finish_reason":"stop"', two)])
    assert call.finished[0]["finish_reasons"] == ("stop", "length")
