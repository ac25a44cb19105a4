"""Spend kept in this process: the default, and the fastest (one lock, a few dict operations)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from genai_meter.budgets._store import RECENT_COSTS, refusal
from genai_meter.budgets._types import Blocked, Counters, Target

# Entry layout (a list, not an object: attribute access would double the cost of the hot path).
_SPEND, _RESERVED, _REQUESTS, _TOKENS, _FIRED, _NEXT, _EXPIRES = range(7)
_PURGE_EVERY = 4096


class MemoryStore:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._data: dict[str, list[object]] = {}
        self._recent: dict[str, deque[int]] = {}
        self._blocked: dict[tuple[str, str], str] = {}
        self._writes = 0

    def _entry(self, key: str, target: Target) -> list[object]:
        entry = self._data.get(key)
        if entry is None:
            entry = self._data[key] = [0, 0, 0, 0, set(), 0, self._now() + target.ttl]
        return entry

    def reserve(self, targets: Sequence[Target], keys: Sequence[str], estimate: int) -> Blocked | None:
        with self._lock:
            entries = [self._entry(key, target) for key, target in zip(keys, targets)]
            for index, target in enumerate(targets):
                if target.hard:
                    e = entries[index]
                    why = refusal(target, e[_SPEND], e[_RESERVED], e[_REQUESTS], e[_TOKENS], estimate)  # type: ignore[arg-type]
                    if why is not None:
                        fired = False
                        if why == "usd" and target.block_field:
                            claimed: set[str] = e[_FIRED]  # type: ignore[assignment]
                            fired = target.block_field not in claimed
                            claimed.add(target.block_field)
                        return Blocked(index, why, e[_SPEND], e[_RESERVED], e[_REQUESTS], e[_TOKENS], fired)  # type: ignore[arg-type]
            for e in entries:
                e[_RESERVED] += estimate  # type: ignore[operator]
                e[_REQUESTS] += 1  # type: ignore[operator]
            self._writes += 1
            if self._writes % _PURGE_EVERY == 0:
                self._purge()
        return None

    def settle(
        self, targets: Sequence[Target], keys: Sequence[str], estimate: int, actual: int, tokens: int
    ) -> tuple[list[int], list[tuple[int, int]]]:
        spends: list[int] = []
        fired: list[tuple[int, int]] = []
        with self._lock:
            for index, target in enumerate(targets):
                e = self._entry(keys[index], target)
                left: int = e[_RESERVED] - estimate  # type: ignore[operator]
                e[_RESERVED] = left if left > 0 else 0
                e[_TOKENS] += tokens  # type: ignore[operator]
                spend: int = e[_SPEND]  # type: ignore[assignment]
                if actual >= 0:
                    spend += actual
                    e[_SPEND] = spend
                    recent = self._recent.get(target.recent_key)
                    if recent is None:
                        recent = self._recent[target.recent_key] = deque(maxlen=RECENT_COSTS)
                    recent.append(actual)
                    # Thresholds are sorted: only the next unfired one needs a compare per call.
                    nxt: int = e[_NEXT]  # type: ignore[assignment]
                    amounts = target.amounts
                    while nxt < len(amounts) and spend >= amounts[nxt]:
                        claimed: set[str] = e[_FIRED]  # type: ignore[assignment]
                        if target.fields[nxt] not in claimed:
                            claimed.add(target.fields[nxt])
                            fired.append((index, nxt))
                        nxt += 1
                    e[_NEXT] = nxt
                spends.append(spend)
        return spends, fired

    def read(self, key: str) -> Counters:
        with self._lock:
            e = self._data.get(key)
            if e is None:
                return Counters()
            return Counters(e[_SPEND], e[_RESERVED], e[_REQUESTS], e[_TOKENS], tuple(sorted(e[_FIRED])))  # type: ignore[arg-type]

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
        for key in [key for key, e in self._data.items() if e[_EXPIRES] < now]:  # type: ignore[operator]
            del self._data[key]

    def close(self) -> None:
        pass
