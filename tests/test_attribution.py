"""`genai_meter.attribute(...)` shared between threads and tasks, and on generator functions."""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import genai_meter
from genai_meter import names
from genai_meter._attribution import current_attribution

from .conftest import Telemetry
from .openai.test_chat import MESSAGES, async_client, client, usage_headers

SEARCH = genai_meter.attribute(feature="search")


def _attribution_of_spans(telemetry: Telemetry) -> list[tuple[Any, Any]]:
    return sorted(
        ((span.attributes or {}).get(names.USER_ID), (span.attributes or {}).get(names.FEATURE))
        for span in telemetry.spans()
    )


def test_one_attribute_object_shared_by_threads(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    inside = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(user: str) -> None:
        try:
            with genai_meter.attribute(user=user), SEARCH:
                inside.wait(timeout=10)  # every thread is inside the same SEARCH block at once
                sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
                inside.wait(timeout=10)
            assert current_attribution().feature is None
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"u{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _attribution_of_spans(telemetry) == [(f"u{i}", "search") for i in range(4)]


def test_one_attribute_object_shared_by_tasks(telemetry: Telemetry, fake_provider: Any) -> None:
    async def main() -> list[Any]:
        async with async_client(fake_provider) as sdk:

            async def one(user: str) -> Any:
                with genai_meter.attribute(user=user), SEARCH:
                    await asyncio.sleep(0)  # the tasks interleave inside SEARCH
                    await sdk.chat.completions.create(
                        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
                    )
                    await asyncio.sleep(0)
                return current_attribution().feature

            return list(await asyncio.gather(*(one(f"t{i}") for i in range(4))))

    assert asyncio.run(main()) == [None] * 4
    assert _attribution_of_spans(telemetry) == [(f"t{i}", "search") for i in range(4)]


def test_nested_use_of_one_object_restores_in_order() -> None:
    with SEARCH:
        with genai_meter.attribute(feature="inner"):
            with SEARCH:
                assert current_attribution().feature == "search"
            assert current_attribution().feature == "inner"
        assert current_attribution().feature == "search"
    assert current_attribution().feature is None


def test_decorated_generator_is_attributed_only_while_it_runs(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    seen_by_caller: list[Any] = []

    @genai_meter.attribute(user="gen-user", feature="stream")
    def stream_answer() -> Iterator[str]:
        stream = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    pieces = []
    for piece in stream_answer():
        seen_by_caller.append(current_attribution().user)
        pieces.append(piece)
    assert pieces
    assert set(seen_by_caller) == {None}  # the caller's own calls between items are not the generator's
    assert _attribution_of_spans(telemetry) == [("gen-user", "stream")]


def test_decorated_generator_send_throw_and_close() -> None:
    @genai_meter.attribute(user="g")
    def echo() -> Iterator[Any]:
        received = yield current_attribution().user
        try:
            yield (received, current_attribution().user)
        except KeyError:
            yield ("caught", current_attribution().user)
        yield "unreached"

    generator = echo()
    assert next(generator) == "g"
    assert generator.send("sent") == ("sent", "g")
    assert generator.throw(KeyError("k")) == ("caught", "g")
    generator.close()
    assert current_attribution().user is None


def test_decorated_async_generator_is_attributed(telemetry: Telemetry, fake_provider: Any) -> None:
    async def main() -> list[Any]:
        async with async_client(fake_provider) as sdk:

            @genai_meter.attribute(user="agen-user", feature="astream")
            async def stream_answer() -> AsyncIterator[str]:
                stream = await sdk.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
                )
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content

            seen = []
            async for _piece in stream_answer():
                seen.append(current_attribution().user)
            return seen

    seen = asyncio.run(main())
    assert seen and set(seen) == {None}
    assert _attribution_of_spans(telemetry) == [("agen-user", "astream")]


class _Feature(str, enum.Enum):  # the Python 3.10 way of string constants
    SEARCH = "search"


class _Tier(int, enum.Enum):  # (its str() is "_Tier.GOLD" on every Python, an IntEnum's on 3.10)
    GOLD = 7


def test_values_that_are_not_plain_text_count_as_the_text_they_name() -> None:
    with genai_meter.attribute(user=42, tenant=_Tier.GOLD, feature=_Feature.SEARCH):
        attribution = current_attribution()
    # an int id is its digits; an enum member its value ("search", not "_Feature.SEARCH"; "7", not
    # "_Tier.GOLD")
    assert (attribution.user, attribution.tenant, attribution.feature) == ("42", "7", "search")
    assert all(type(value) is str for value in (attribution.user, attribution.tenant, attribution.feature))


def test_a_block_s_attribution_is_the_dataclass_s_own() -> None:
    """The attribution a block makes (through the slots' setters, not the dataclass's `__init__`) is
    an `Attribution` like any other: equal, shown alike, frozen."""
    import dataclasses

    from genai_meter._attribution import Attribution

    with genai_meter.attribute(user="u-1", tenant="t-1", feature="f-1") as made:
        pass
    assert type(made) is Attribution
    assert made == Attribution(user="u-1", tenant="t-1", feature="f-1", metadata={})
    assert repr(made) == repr(Attribution(user="u-1", tenant="t-1", feature="f-1", metadata={}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.user = "u-2"  # type: ignore[misc]
