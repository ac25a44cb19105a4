"""What a fault's log line holds: the place, the type and the code path, never the values an
exception quotes (a validation error quotes the rejected input, which may be a completion)."""

from __future__ import annotations

import logging

import pydantic
import pytest

from genai_meter._faults import fault_counts, record_fault, reset_faults

SENTINEL = "COMPLETION-SENTINEL-7f3a"


class _Answer(pydantic.BaseModel):
    score: int


def test_validation_error_is_logged_without_its_input(caplog: pytest.LogCaptureFixture) -> None:
    reset_faults()
    try:
        _Answer.model_validate_json(f'{{"score": "{SENTINEL}"}}')
    except pydantic.ValidationError as error:
        with caplog.at_level(logging.WARNING, logger="genai_meter"):
            record_fault("test.validation", error)
    [record] = caplog.records
    text = record.getMessage() + (record.exc_text or "")
    assert SENTINEL not in text
    assert "ValidationError: score: int_parsing" in text
    assert "test_fault_log.py" in text  # the code path is still there to fix the fault
    assert fault_counts() == {"test.validation": 1}


def test_long_messages_are_cut_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    reset_faults()
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        for _ in range(3):
            record_fault("test.long", ValueError("x" * 1000 + SENTINEL))
    [record] = caplog.records
    assert SENTINEL not in record.getMessage()
    assert "ValueError: " + "x" * 300 + "..." in record.getMessage()
    assert fault_counts() == {"test.long": 3}
