"""`Usage` is made on every call through its own `__new__` (see its docstring): it must be the same
frozen dataclass value that `dataclass` alone would make."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from genai_meter import Usage


def test_fields_by_keyword_position_and_default() -> None:
    part = Usage(7)
    usage = Usage(
        10,
        3,
        cache_read_tokens=4,
        cache_write_tokens=2,
        cache_write_1h_tokens=1,
        reasoning_tokens=1,
        estimated=True,
        suspect=True,
        parts=(part,),
        audio_input_tokens=5,
        audio_output_tokens=2,
    )
    assert type(usage) is Usage
    assert [f.name for f in dataclasses.fields(usage)] == list(Usage.__slots__)  # (the layout `__new__` fills)
    assert dataclasses.astuple(usage) == (
        10, 3, 4, 2, 1, 1, True, True, ((7, 0, 0, 0, 0, 0, False, False, (), 0, 0),), 5, 2
    )
    assert dataclasses.astuple(Usage()) == (0, 0, 0, 0, 0, 0, False, False, (), 0, 0)
    assert Usage(1, 2, 0, 0, 0, 0, False, False, (), 3, 1) == Usage(1, 2, audio_input_tokens=3, audio_output_tokens=1)
    assert Usage(input_tokens=1, output_tokens=2) == Usage(1, 2)
    assert Usage(1, 2) != Usage(1, 3)


def test_frozen_hashable_and_copyable() -> None:
    usage = Usage(input_tokens=5, output_tokens=2, parts=(Usage(1),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.input_tokens = 3  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):  # (TypeError: CPython 3.11's frozen slots dataclasses)
        usage.other = 1  # type: ignore[attr-defined]
    assert hash(usage) == hash(Usage(5, 2, parts=(Usage(1),)))
    assert {usage: "x"}[Usage(5, 2, parts=(Usage(1),))] == "x"
    assert pickle.loads(pickle.dumps(usage)) == usage
    assert copy.deepcopy(usage) == usage and copy.copy(usage) == usage
    replaced = dataclasses.replace(usage, suspect=True)
    assert type(replaced) is Usage and replaced.suspect and replaced.input_tokens == 5
    assert repr(Usage(1)) == (
        "Usage(input_tokens=1, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, "
        "cache_write_1h_tokens=0, reasoning_tokens=0, estimated=False, suspect=False, parts=(), "
        "audio_input_tokens=0, audio_output_tokens=0)"
    )


def test_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="tokens"):
        Usage(tokens=1)
    with pytest.raises(TypeError, match="12 positional"):
        Usage(1, 2, 3, 4, 5, 6, False, False, (), 10, 11, 12)


def test_a_subclass_is_made_the_dataclass_way() -> None:
    @dataclasses.dataclass(frozen=True)
    class Tagged(Usage):
        tag: str = ""

    class Plain(Usage):
        __slots__ = ()

    tagged = Tagged(3, 4, tag="x")
    assert type(tagged) is Tagged
    assert (tagged.input_tokens, tagged.output_tokens, tagged.tag) == (3, 4, "x")
    assert dataclasses.replace(tagged, output_tokens=5) == Tagged(3, 5, tag="x")
    plain = Plain(3, output_tokens=4)
    assert type(plain) is Plain and (plain.input_tokens, plain.output_tokens, plain.suspect) == (3, 4, False)
    assert Plain(3) == Plain(3) != Plain(4)
