"""Spend kept in this process: the default, and the fastest (one lock, a few dict operations)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from genai_meter._fork import reset_in_child
from genai_meter.budgets._store import RECENT_COSTS, refusal
from genai_meter.budgets._types import Blocked, Counters, Reservation, Target

_PURGE_EVERY = 4096


_NEVER = 1 << 62


class _Entry:
    __slots__ = ("expires", "fired", "next", "next_at", "recent", "requests", "reserved", "spend", "tokens")

    def __init__(self, expires: float, first_threshold: int, recent: deque[int]) -> None:
        self.spend = 0
        self.reserved = 0
        self.requests = 0
        self.tokens = 0
        self.fired: set[str] = set()
        self.next = 0  # index of the next threshold not yet reached (thresholds are sorted)
        self.next_at = first_threshold  # its amount: one compare per settle
        self.recent = recent  # the budget and scope value's recent per-call costs
        self.expires = expires


class MemoryStore:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._data: dict[str, _Entry] = {}
        self._recent: dict[str, deque[int]] = {}
        self._blocked: dict[tuple[str, str], str] = {}
        self._writes = 0
        reset_in_child(self, MemoryStore._after_fork)

    def _after_fork(self) -> None:
        # A forked child: the lock may have been held by a thread that is not here, and the calls in
        # flight in the parent never settle here, so their reservations are not this process's.
        self._lock = threading.Lock()
        for entry in self._data.values():
            entry.reserved = 0

    def _entry(self, key: str, target: Target) -> _Entry:
        entry = self._data.get(key)
        if entry is None:
            recent = self._recent.get(target.recent_key)
            if recent is None:
                recent = self._recent[target.recent_key] = deque(maxlen=RECENT_COSTS)
            first = target.amounts[0] if target.amounts else _NEVER
            entry = self._data[key] = _Entry(self._now() + target.ttl, first, recent)
        return entry

    def reserve(
        self, targets: Sequence[Target], keys: Sequence[str], estimate: int, reservation_id: str
    ) -> Blocked | None:
        data = self._data
        with self._lock:
            entries = []
            for index, target in enumerate(targets):
                e = data.get(keys[index]) or self._entry(keys[index], target)
                entries.append(e)
                if target.hard:
                    why = refusal(target, e.spend, e.reserved, e.requests, e.tokens, estimate)
                    if why is not None:
                        fired = False
                        if why == "usd" and target.block_field:
                            fired = target.block_field not in e.fired
                            e.fired.add(target.block_field)
                        return Blocked(index, why, e.spend, e.reserved, e.requests, e.tokens, fired)
            for e in entries:
                e.reserved += estimate
                e.requests += 1
            self._writes += 1
            if self._writes % _PURGE_EVERY == 0:
                self._purge()
        return None

    def settle(self, reservation: Reservation, actual: int, tokens: int) -> tuple[list[int], list[tuple[int, int]]]:
        targets, keys, estimate, held = reservation.targets, reservation.keys, reservation.estimate, reservation.held
        spends: list[int] = []
        fired: list[tuple[int, int]] = []
        data = self._data
        with self._lock:
            for index, target in enumerate(targets):
                e = data.get(keys[index]) or self._entry(keys[index], target)
                if held:
                    left = e.reserved - estimate
                    e.reserved = left if left > 0 else 0
                else:
                    e.requests += 1
                e.tokens += tokens
                if actual >= 0:
                    e.spend += actual
                    e.recent.append(actual)
                    if e.spend >= e.next_at:
                        self._claim(e, target, index, fired)
                spends.append(e.spend)
        return spends, fired

    @staticmethod
    def _claim(e: _Entry, target: Target, index: int, fired: list[tuple[int, int]]) -> None:
        amounts = target.amounts
        while e.next < len(amounts) and e.spend >= amounts[e.next]:
            field = target.fields[e.next]
            if field not in e.fired:  # not already claimed by a blocked call
                e.fired.add(field)
                fired.append((index, e.next))
            e.next += 1
        e.next_at = amounts[e.next] if e.next < len(amounts) else _NEVER

    def read(self, key: str) -> Counters:
        with self._lock:
            e = self._data.get(key)
            if e is None:
                return Counters()
            return Counters(e.spend, e.reserved, e.requests, e.tokens, tuple(sorted(e.fired)))

    def recent(self, recent_key: str) -> list[int]:
        with self._lock:
            return list(self._recent.get(recent_key, ()))

    def blocked(self) -> dict[tuple[str, str], str]:
        with self._lock:
            return dict(self._blocked)

    def block(self, kind: str, value: str, reason: str) -> None:
        with self._lock:
            self._blocked[(kind, value)] = reason

    def unblock(self, kind: str, value: str) -> bool:
        with self._lock:
            return self._blocked.pop((kind, value), None) is not None

    def _purge(self) -> None:
        now = self._now()
        for key in [key for key, e in self._data.items() if e.expires < now]:
            del self._data[key]

    def carry_over(self) -> None:
        """Handed to a new guard, whose budgets' thresholds may differ: each counter looks for its
        next threshold again at its next settle (thresholds already fired stay fired)."""
        with self._lock:
            for entry in self._data.values():
                entry.next = 0
                entry.next_at = 0

    def close(self) -> None:
        pass
