"""One `Usage` value for every provider, and the readers that turn each provider's usage into it.

Providers disagree on what their fields mean: OpenAI's `prompt_tokens` includes cached tokens,
Anthropic's `input_tokens` excludes cache reads and writes. Normalising here, once, to the semconv
meaning (input includes cached, output includes reasoning) is what keeps pricing from double-billing.
Readers accept SDK objects or plain dicts, and never trust a field: missing, null, negative or
non-numeric values (and counts past `MAX_TOKEN_COUNT`) count as zero and mark the usage `suspect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._frozen_twins import unfrozen_twin

# (Readers compare pairs of counts with conditional expressions, not `min`/`max`: a builtin call
# with several arguments costs ~2,000 CPU instructions, a comparison ~100, on every call.)

# No call has used a trillion tokens; a larger figure is a broken field. Left in, it would price a
# call at billions of dollars and overflow the int64 of OTLP exports and ledger columns for good.
MAX_TOKEN_COUNT = 10**12


@dataclass(frozen=True, slots=True, init=False)
class Usage:
    """Token counts of one call, in the semantic-convention meaning.

    `input_tokens` includes cache reads and writes; `output_tokens` includes reasoning tokens.
    `cache_write_1h_tokens` is the part of `cache_write_tokens` written with a one-hour lifetime
    (priced higher by Anthropic). `estimated` marks counts guessed from text length because the
    provider reported none; `suspect` marks counts read from missing or invalid fields.

    `parts` are requests the provider made apart inside this call and billed each on its own
    (Anthropic's context compaction): their tokens are in the counts above, but a long-context tier
    is judged on each request's input, not on the sum, so pricing prices them one by one.

    `audio_input_tokens` / `audio_output_tokens` are the parts of the input and output that were
    audio (OpenAI's audio models, Gemini's audio modality), priced at the model's audio prices.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    suspect: bool = False
    parts: tuple[Usage, ...] = ()
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    def __new__(
        cls,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        reasoning_tokens: int = 0,
        estimated: bool = False,
        suspect: bool = False,
        parts: tuple[Usage, ...] = (),
        audio_input_tokens: int = 0,
        audio_output_tokens: int = 0,
        *subclass_args: Any,
        **subclass_fields: Any,
    ) -> Usage:
        """Made on every call: a frozen dataclass's own `__init__` sets each field through
        `object.__setattr__` (~15,000 CPU instructions for these nine), so the fields are stored on an
        unfrozen object of the same slots (plain attribute stores), whose class then becomes this one
        (~6,000 in all). Everything else is the dataclass's: equality, hash, repr, `replace`, pickling.

        A subclass (whose layout may differ, and which may add fields) is made the dataclass's way:
        its fields set here one by one, then again by its own `__init__` if it is a dataclass."""
        if cls is not Usage:
            values = (
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                cache_write_1h_tokens,
                reasoning_tokens,
                estimated,
                suspect,
                parts,
                audio_input_tokens,
                audio_output_tokens,
            )
            instance = object.__new__(cls)
            for name, value in zip(Usage.__slots__, values, strict=True):
                object.__setattr__(instance, name, value)
            return instance
        if subclass_args or subclass_fields:
            unexpected = ", ".join(subclass_fields) or f"{11 + len(subclass_args)} positional arguments"
            raise TypeError(f"Usage() got unexpected arguments: {unexpected}")
        return new_usage(
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
            reasoning_tokens,
            estimated,
            suspect,
            parts,
            audio_input_tokens,
            audio_output_tokens,
        )

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens billed at the plain input rate."""
        uncached = self.input_tokens - self.cache_read_tokens - self.cache_write_tokens
        return uncached if uncached > 0 else 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_UsageSlots = unfrozen_twin(Usage)


def new_usage(
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    reasoning_tokens: int = 0,
    estimated: bool = False,
    suspect: bool = False,
    parts: tuple[Usage, ...] = (),
    audio_input_tokens: int = 0,
    audio_output_tokens: int = 0,
) -> Usage:
    """`Usage(...)` for the readers, which make one on every call: a class call goes through
    `type.__call__` and `__new__`'s variadic signature (a keyword dictionary built and read, ~4,000
    CPU instructions), a function call does not."""
    made: Any = _UsageSlots()
    made.input_tokens = input_tokens
    made.output_tokens = output_tokens
    made.cache_read_tokens = cache_read_tokens
    made.cache_write_tokens = cache_write_tokens
    made.cache_write_1h_tokens = cache_write_1h_tokens
    made.reasoning_tokens = reasoning_tokens
    made.estimated = estimated
    made.suspect = suspect
    made.parts = parts
    made.audio_input_tokens = audio_input_tokens
    made.audio_output_tokens = audio_output_tokens
    made.__class__ = Usage
    usage: Usage = made
    return usage


def field(source: Any, name: str) -> Any:
    """`source[name]` of a dict, else the attribute, else None.

    SDK response models are pydantic models: a field they declare is in the instance's `__dict__`,
    one they do not (a newer API field) in `__pydantic_extra__`. Looking there first avoids
    `getattr` on a missing name, which raises and catches an AttributeError inside pydantic (µs).
    """
    if source is None:
        return None
    if type(source) is dict:
        return source.get(name)
    values = getattr(source, "__dict__", None)
    if values is not None and name in values:
        return values[name]
    kind = type(source)
    if hasattr(kind, "__pydantic_fields__") or hasattr(kind, "__fields__"):  # pydantic 2 / 1
        extra = getattr(source, "__pydantic_extra__", None)
        return extra.get(name) if isinstance(extra, dict) else None
    return getattr(source, name, None)


class _Reader:
    """Reads integer fields, remembering whether any was missing or invalid."""

    __slots__ = ("suspect",)

    def __init__(self) -> None:
        self.suspect = False

    def count(self, source: Any, name: str, required: bool = False) -> int:
        # `field`, with its most common cases (a stream's decoded JSON, a declared field of an SDK
        # model) looked up in place
        if type(source) is dict:
            value = source.get(name)
        else:
            values = getattr(source, "__dict__", None)
            value = values[name] if values is not None and name in values else field(source, name)
        if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:  # what providers send: checked first
            return value
        if value is None:
            if required:
                self.suspect = True
            return 0
        return self._number(value)

    def valid(self, value: Any) -> int | None:
        """A field's value read already, as `count` reads it (not required), but None stays None."""
        if value is None or (type(value) is int and 0 <= value <= MAX_TOKEN_COUNT):
            return value
        return self._number(value)

    def _number(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.suspect = True
            return 0
        if not 0 <= value <= MAX_TOKEN_COUNT:  # negative, NaN, infinite or absurdly large
            self.suspect = True
            return 0
        return int(value)


def openai_chat_usage(usage: Any) -> Usage | None:
    """Chat Completions / Embeddings / legacy Completions usage (`prompt_tokens`, `completion_tokens`)."""
    if usage is None:
        return None
    fields = usage if type(usage) is dict else _declared_fields(usage)  # a stream's decoded JSON, an SDK model
    if fields is not None:
        plain = _plain_chat_usage(fields)
        if plain is not None:
            return plain
    read = _Reader()
    prompt = read.count(usage, "prompt_tokens", required=True)
    completion = read.count(usage, "completion_tokens")
    # (a details object that is absent holds no counts: not read, as `count` would read None as 0)
    prompt_details = field(usage, "prompt_tokens_details")
    cached = cache_write = reasoning = audio_in = audio_out = 0
    if prompt_details is not None:
        cached = read.count(prompt_details, "cached_tokens")
        cache_write = read.count(prompt_details, "cache_write_tokens")
        audio_in = read.count(prompt_details, "audio_tokens")
    completion_details = field(usage, "completion_tokens_details")
    if completion_details is not None:
        reasoning = read.count(completion_details, "reasoning_tokens")
        audio_out = read.count(completion_details, "audio_tokens")
    return _chat_usage(prompt, completion, cached, cache_write, reasoning, read.suspect, audio_in, audio_out)


def _chat_usage(
    prompt: int,
    completion: int,
    cached: int,
    cache_write: int,
    reasoning: int,
    suspect: bool,
    audio_in: int = 0,
    audio_out: int = 0,
) -> Usage:
    """Chat Completions counts read as valid, held within each other: cache reads within the prompt,
    cache writes within the rest of it, reasoning within the completion (when it has a count), audio
    within the prompt and the completion."""
    uncached = prompt - cached if cached < prompt else 0
    return new_usage(
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_tokens=cached if cached < prompt else prompt,
        cache_write_tokens=cache_write if cache_write < uncached else uncached,
        reasoning_tokens=reasoning if reasoning < completion or not completion else completion,
        suspect=suspect,
        audio_input_tokens=audio_in if audio_in < prompt else prompt,
        audio_output_tokens=audio_out if audio_out < completion else completion,
    )


def _declared_fields(model: Any) -> dict[str, Any] | None:
    """An SDK model's fields as a dict (a pydantic model's `__dict__`), where it holds every field
    the model has: None where it has fields its class does not declare (a newer API's, kept in
    `__pydantic_extra__`) or is not such a model, for the general reader (`field`)."""
    fields = getattr(model, "__dict__", None)
    if type(fields) is not dict or getattr(model, "__pydantic_extra__", None):
        return None
    return fields


def _plain_chat_usage(usage: dict[str, Any]) -> Usage | None:
    """`openai_chat_usage` of decoded JSON, or of an SDK model's fields (its details models read
    the same way), whose counts are all plain valid integers (what OpenAI sends; a count that is
    absent or null is 0, as the general reader reads it), read without a `_Reader`; None for
    anything else (negative, fractional or absurd counts, audio tokens, fields the SDK's models do
    not declare), which the general reader then reads and marks."""
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if completion is None:
        completion = 0
    if not (type(prompt) is int and type(completion) is int and 0 <= prompt <= MAX_TOKEN_COUNT):
        return None
    if not 0 <= completion <= MAX_TOKEN_COUNT:
        return None
    cached: Any = 0
    cache_write: Any = 0
    reasoning: Any = 0
    details = usage.get("prompt_tokens_details")
    if details is not None:
        if type(details) is not dict:
            details = _declared_fields(details)
        if details is None or details.get("audio_tokens"):
            return None
        cached = details.get("cached_tokens")
        cache_write = details.get("cache_write_tokens")
        if cached is None:
            cached = 0
        if cache_write is None:
            cache_write = 0
        if not (type(cached) is int and type(cache_write) is int and 0 <= cached <= MAX_TOKEN_COUNT):
            return None
        if not 0 <= cache_write <= MAX_TOKEN_COUNT:
            return None
    details = usage.get("completion_tokens_details")
    if details is not None:
        if type(details) is not dict:
            details = _declared_fields(details)
        if details is None or details.get("audio_tokens"):
            return None
        reasoning = details.get("reasoning_tokens")
        if reasoning is None:
            reasoning = 0
        if not (type(reasoning) is int and 0 <= reasoning <= MAX_TOKEN_COUNT):
            return None
    return _chat_usage(prompt, completion, cached, cache_write, reasoning, False)


def openai_responses_usage(usage: Any) -> Usage | None:
    """Responses API usage (`input_tokens`, `output_tokens`, `*_tokens_details`). As in Chat
    Completions, `input_tokens` includes the cache reads (`cached_tokens`) and the cache writes
    (`cache_write_tokens`, priced apart from plain input)."""
    if usage is None:
        return None
    read = _Reader()
    input_tokens = read.count(usage, "input_tokens", required=True)
    output_tokens = read.count(usage, "output_tokens")
    input_details = field(usage, "input_tokens_details")
    cached = cache_write = reasoning = 0
    if input_details is not None:  # (as in `openai_chat_usage`)
        cached = read.count(input_details, "cached_tokens")
        cache_write = read.count(input_details, "cache_write_tokens")
    output_details = field(usage, "output_tokens_details")
    if output_details is not None:
        reasoning = read.count(output_details, "reasoning_tokens")
    return new_usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached if cached < input_tokens else input_tokens,
        cache_write_tokens=cache_write if cache_write < input_tokens - cached else max(input_tokens - cached, 0),
        reasoning_tokens=reasoning,
        suspect=read.suspect,
    )


def estimate_tokens(text_chars: int) -> int:
    """A rough token count for text whose usage the provider did not report (about 4 chars a token)."""
    return (text_chars + 3) // 4


def estimated_usage(prompt_chars: int, output_chars: int) -> Usage:
    """Usage guessed from text lengths, marked as an estimate (a stream that ended without usage)."""
    return new_usage(
        input_tokens=estimate_tokens(prompt_chars), output_tokens=estimate_tokens(output_chars), estimated=True
    )


def _iterations(usage: Any) -> Any:
    """`usage.iterations` (beta usage only), cheaply: a declared field, else pydantic's extra fields
    (an older SDK), else a dict's key. Most usages have none, and this runs on every Anthropic call."""
    if type(usage) is dict:
        return usage.get("iterations")
    values = getattr(usage, "__dict__", None)
    if values is not None and "iterations" in values:
        return values["iterations"]
    extra = getattr(usage, "__pydantic_extra__", None)
    return extra.get("iterations") if type(extra) is dict else None


def _anthropic_input(read: _Reader, source: Any) -> tuple[int, int, int, int]:
    """(uncached input, cache reads, cache writes, one-hour writes) of one Anthropic request's usage:
    its input excludes the cache reads and writes; `cache_creation` breaks the writes down by
    lifetime (and stands for their total where the total is missing)."""
    uncached = read.count(source, "input_tokens", required=True)
    cache_read = read.count(source, "cache_read_input_tokens")
    breakdown = field(source, "cache_creation")
    write_5m = write_1h = 0
    if breakdown is not None:  # (absent: no counts, as `count` would read None as 0)
        write_5m = read.count(breakdown, "ephemeral_5m_input_tokens")
        write_1h = read.count(breakdown, "ephemeral_1h_input_tokens")
    cache_write = read.valid(field(source, "cache_creation_input_tokens"))
    if cache_write is None:
        cache_write = write_5m + write_1h
    return uncached, cache_read, cache_write, write_1h if write_1h < cache_write else cache_write


def _compactions(read: _Reader, iterations: Any) -> list[Usage]:
    """The usage of each `compaction` entry of Anthropic's `usage.iterations`. An entry counts like
    the top-level usage (input excludes the cache reads and writes; `cache_creation` breaks the
    writes down by lifetime)."""
    if not isinstance(iterations, list | tuple):
        read.suspect = True
        return []
    found = []
    for entry in iterations:
        if field(entry, "type") != "compaction":
            continue
        uncached, cache_read, cache_write, write_1h = _anthropic_input(read, entry)
        found.append(
            new_usage(
                input_tokens=uncached + cache_read + cache_write,
                output_tokens=read.count(entry, "output_tokens"),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                cache_write_1h_tokens=write_1h,
            )
        )
    return found


def anthropic_usage(usage: Any) -> Usage | None:
    """Anthropic Messages usage. Its `input_tokens` excludes cache reads and writes; semconv's includes
    them, so they are added back here. The one-hour part of the cache writes comes from
    `cache_creation.ephemeral_1h_input_tokens` (priced higher than five-minute writes).

    The tokens of `compaction` entries of the beta `usage.iterations` are billed but left out of the
    top-level fields (the SDK's `BetaUsage.iterations`), so they are added in; the other entries
    (`message`, ...) are already in the top-level counts."""
    if usage is None:
        return None
    read = _Reader()
    uncached, cache_read, cache_write, write_1h = _anthropic_input(read, usage)
    output = read.count(usage, "output_tokens")
    output_details = field(usage, "output_tokens_details")
    reasoning = read.count(output_details, "thinking_tokens") if output_details is not None else 0
    iterations = _iterations(usage)
    parts = _compactions(read, iterations) if iterations else ()  # rare: beta responses that compacted
    for part in parts:
        uncached += part.input_tokens - part.cache_read_tokens - part.cache_write_tokens
        output += part.output_tokens
        cache_read += part.cache_read_tokens
        cache_write += part.cache_write_tokens
        write_1h += part.cache_write_1h_tokens
    return new_usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=reasoning if reasoning < output or not output else output,
        suspect=read.suspect,
        parts=tuple(parts),
    )


def gemini_usage(metadata: Any) -> Usage | None:
    """Google Gen AI `usage_metadata`. `prompt_token_count` already includes the cached tokens;
    thinking tokens are billed as output but reported apart from `candidates_token_count`, so output
    is candidates plus thoughts. Tool-use prompt tokens are billed as input and reported apart too."""
    if metadata is None:
        return None
    fields = _declared_fields(metadata)  # the SDK's model
    if fields is not None:
        plain = _plain_gemini_usage(fields)
        if plain is not None:
            return plain
    read = _Reader()
    prompt = read.count(metadata, "prompt_token_count", required=True)
    tool_prompt = read.count(metadata, "tool_use_prompt_token_count")
    cached = read.count(metadata, "cached_content_token_count")
    candidates = read.count(metadata, "candidates_token_count")
    thoughts = read.count(metadata, "thoughts_token_count")
    audio_in = _modality_tokens(read, field(metadata, "prompt_tokens_details"), "AUDIO")
    audio_out = _modality_tokens(read, field(metadata, "candidates_tokens_details"), "AUDIO")
    return _gemini_usage(prompt, tool_prompt, cached, candidates, thoughts, audio_in, audio_out, read.suspect)


def _plain_gemini_usage(fields: dict[str, Any]) -> Usage | None:
    """`gemini_usage` of the SDK's model's fields whose counts are all plain valid integers (a count
    that is absent or null is 0, as the general reader reads it), read without a `_Reader` for each;
    None for anything else, which the general reader then reads and marks."""
    prompt = fields.get("prompt_token_count")
    if not (type(prompt) is int and 0 <= prompt <= MAX_TOKEN_COUNT):
        return None
    counts = []
    for name in _GEMINI_COUNTS:
        value = fields.get(name)
        if value is None:
            value = 0
        elif not (type(value) is int and 0 <= value <= MAX_TOKEN_COUNT):
            return None
        counts.append(value)
    tool_prompt, cached, candidates, thoughts = counts
    read = _Reader()
    audio_in = _modality_tokens(read, fields.get("prompt_tokens_details"), "AUDIO")
    audio_out = _modality_tokens(read, fields.get("candidates_tokens_details"), "AUDIO")
    if read.suspect:
        return None
    return _gemini_usage(prompt, tool_prompt, cached, candidates, thoughts, audio_in, audio_out, False)


_GEMINI_COUNTS = (
    "tool_use_prompt_token_count",
    "cached_content_token_count",
    "candidates_token_count",
    "thoughts_token_count",
)


def _gemini_usage(
    prompt: int,
    tool_prompt: int,
    cached: int,
    candidates: int,
    thoughts: int,
    audio_in: int,
    audio_out: int,
    suspect: bool,
) -> Usage:
    """Gemini counts read as valid, held within each other (cache reads and audio within the input,
    audio within the candidates)."""
    input_tokens = prompt + tool_prompt
    return new_usage(
        input_tokens=input_tokens,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached if cached < input_tokens else input_tokens,
        reasoning_tokens=thoughts,
        suspect=suspect,
        audio_input_tokens=audio_in if audio_in < input_tokens else input_tokens,
        audio_output_tokens=audio_out if audio_out < candidates else candidates,
    )


def _modality_tokens(read: _Reader, details: Any, modality: str) -> int:
    """The tokens of one modality in a Gemini `*_tokens_details` list (`ModalityTokenCount`s, or the
    API's `{"modality", "tokenCount"}` objects); 0 when it has none."""
    if not details or not isinstance(details, list | tuple):
        return 0
    total = 0
    for entry in details:
        kind = field(entry, "modality")
        name = getattr(kind, "value", kind)  # (the SDK's `MediaModality` enum, or the API's text)
        if name == modality:
            count = field(entry, "token_count")
            total += read.count(entry, "token_count" if count is not None else "tokenCount")
    return total
