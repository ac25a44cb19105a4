"""What was worked out from an object, held by the object's identity.

Keyed by `id()`: cheap where hashing the object is not (a mapping's items, hashed again on every
lookup) and right where equality is not identity (a `wrapt` proxy equals the function it wraps; a
meter provider's meters may compare equal). The object is held beside its value, so its id cannot
pass to another object while the entry lives.
"""

from __future__ import annotations

from typing import Generic, TypeVar

V = TypeVar("V")


class IdentityCache(Generic[V]):
    """At most `limit` entries (emptied when full: the values can always be worked out again); no
    limit with None."""

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int | None) -> None:
        self._entries: dict[int, tuple[object, V]] = {}
        self._limit = limit

    def get(self, key: object) -> V | None:
        held = self._entries.get(id(key))
        return held[1] if held is not None and held[0] is key else None

    def put(self, key: object, value: V) -> V:
        if self._limit is not None and len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value
