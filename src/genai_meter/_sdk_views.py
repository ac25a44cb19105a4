"""An OTel SDK instrument's view matches in every reader, for the paths that hand genai-meter's
values straight to the SDK's aggregations (`_histogram_records`, `_sum_records`).

Both paths exist because the SDK cleans and hashes a value's attribute mapping again for every
value, where genai-meter's mappings are clean by construction and reused. Both rest on the same
SDK internals, found and checked here once: the instrument (the API's proxy resolves to the SDK's
own once the SDK is set), its meter's configuration, its measurement consumer, each reader's view
matches of it, and whether an aggregation method is the one a path mirrors (its source, read once
per function). Where anything differs, `ViewMatches.get` says None and the caller takes the public
API; a surprise inside is counted as a fault once and switches the public API on for good.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Collection
from typing import Any

from ._faults import record_fault
from ._identity_cache import IdentityCache

try:
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, TraceBasedExemplarFilter
    from opentelemetry.sdk.metrics._internal._view_instrument_match import (
        _hash_attributes as hash_attributes,  # the SDK's key of an attribute mapping in a view's aggregations
    )
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer

    QUIET_FILTERS: tuple[type, ...] = (AlwaysOffExemplarFilter, TraceBasedExemplarFilter)
    SDK_INTERNALS = True
except ImportError:  # no OTel SDK, or one without these internals: the public API only
    hash_attributes = None  # type: ignore[assignment]
    QUIET_FILTERS = ()
    SDK_INTERNALS = False

__all__ = ["QUIET_FILTERS", "SDK_INTERNALS", "ViewMatches", "all_mirror", "hash_attributes", "mirrors"]

_COMMENT_OR_SPACE = re.compile(r"#[^\n]*|\s+")
_VIEW_MATCH_PARTS = ("_lock", "_attributes_aggregation", "consume_measurement", "_view")
# each function `mirrors` has read -> whether its source is one of the digests it was asked about
_verdicts: IdentityCache[tuple[Collection[str], bool]] = IdentityCache(100)
# id(a digests set `all_mirror` was asked about) -> (the functions last asked about, the answer)
_set_verdicts: dict[int, tuple[tuple[object, ...], bool]] = {}
_MAX_KEYS = 20_000  # attribute mappings whose hashed key a view match set keeps


def source_digest(function: Any) -> str:
    """The sha256 of a function's source without comments and spacing."""
    return hashlib.sha256(_COMMENT_OR_SPACE.sub("", inspect.getsource(function)).encode()).hexdigest()


def mirrors(method: Any, digests: Collection[str]) -> bool:
    """Whether `method` is a function whose code a fast path mirrors: it wraps nothing (a wrapper's
    source as `inspect` reads it is the wrapped function's, and a `wrapt` proxy compares equal to
    it) and its source, comments and spacing aside, has one of `digests`. Each function is read
    once (held by identity)."""
    if getattr(method, "__wrapped__", None) is not None:
        return False
    known = _verdicts.get(method)
    if known is not None and known[0] is digests:
        return known[1]
    try:
        verdict = source_digest(method) in digests
    except Exception:  # no source to read (a frozen app): call it
        verdict = False
    _verdicts.put(method, (digests, verdict))
    return verdict


def all_mirror(functions: tuple[object, ...], digests: Collection[str]) -> bool:
    """Whether every one of `functions` `mirrors` one of `digests`: the answer kept for the last
    functions asked about with these digests (a module's constant), so that a caller asking on
    every use compares identities only; a function replaced meanwhile is read again."""
    last = _set_verdicts.get(id(digests))
    if last is not None and last[0] == functions:  # (functions compare by identity)
        return last[1]
    known = all(mirrors(function, digests) for function in functions)
    _set_verdicts[id(digests)] = (functions, known)
    return known


class ViewMatches:
    """The view matches of one instrument in every reader of its meter provider."""

    __slots__ = ("_keys", "_matched", "_sdk_class", "_where", "broken", "instrument", "readers")

    def __init__(self, instrument: Any, sdk_class: Any, where: str) -> None:
        self.instrument = instrument  # the SDK's own once found behind the API's proxy
        self._sdk_class = sdk_class
        self._where = where  # the fault's place
        # (the consumer's reader storages, their view matches): the storages mapping is replaced, never
        # changed, when a reader is added or removed, and a storage's matches never change once made
        self._matched: tuple[object, list[tuple[Any, bool]]] = (None, [])
        self.broken = False  # a surprise in the SDK's internals: the public API from then on
        self.readers = 0  # how many readers the matches found last are in
        self._keys: IdentityCache[Any] = IdentityCache(_MAX_KEYS)  # attribute mapping -> the SDK's key for it

    def key(self, attributes: Any) -> Any:
        """The SDK's key of an attribute mapping in the views' aggregations (hashed once per mapping,
        held by its identity: the mapping must not change)."""
        key = self._keys.get(attributes)
        return key if key is not None else self._keys.put(attributes, hash_attributes(attributes))

    def fail(self, fault: Exception) -> None:
        record_fault(self._where, fault)
        self.broken = True

    def get(self) -> list[tuple[Any, bool]] | None:
        """The instrument's view match in every reader, each with whether it must be locked to
        aggregate into (it drops its aggregations at delta collections: SDK 1.45.2), or None where
        the public API must be used. Checked each time: the meter's state may change."""
        if not SDK_INTERNALS or self.broken:
            return None
        instrument: Any = self.instrument
        if type(instrument) is not self._sdk_class:
            instrument = getattr(instrument, "_real_instrument", None)  # the API's proxy, once the SDK is set
            if type(instrument) is not self._sdk_class:
                return None
            self.instrument = instrument
        try:
            is_enabled = getattr(instrument, "_is_enabled", None)  # the meter's configuration (SDK 1.39+)
            if is_enabled is not None and not is_enabled():
                return None
            consumer = instrument._measurement_consumer
            if type(consumer) is not SynchronousMeasurementConsumer:
                return None
            storages = consumer._reader_storages
            if storages is self._matched[0]:
                return self._matched[1]
            if type(consumer._sdk_config.exemplar_filter) not in QUIET_FILTERS:
                return None
            matches = [
                (match, bool(getattr(match, "_reset_on_collect", False)))
                for storage in storages.values()
                for match in storage._get_or_init_view_instrument_match(instrument)
            ]
            for match, _locked in matches:
                if not all(hasattr(match, part) for part in _VIEW_MATCH_PARTS):
                    return None
                if match._view._attribute_keys is not None:  # the view keeps only some keys
                    return None
        except Exception as fault:
            self.fail(fault)
            return None
        self._matched = (storages, matches)
        self.readers = len(storages)
        return matches
