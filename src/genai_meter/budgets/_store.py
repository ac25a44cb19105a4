"""What every spend store does, and the one rule they share for refusing a reservation.

Stores count in integer nano-dollars. Each operation touches all of a call's budget counters at
once (atomically: under a lock, in one SQLite transaction, or in one Redis Lua script), so two
concurrent calls can never both take the last of a hard budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from genai_meter.budgets._config import BudgetConfig
from genai_meter.budgets._errors import KIND_REQUESTS, KIND_TOKENS, KIND_USD
from genai_meter.budgets._types import Blocked, Counters, Reservation, Target

RECENT_COSTS = 32
"""Per-call costs kept per budget and scope value, for the uses-remaining estimate."""


class StoreUnavailable(Exception):
    """The store could not be reached; the guard fails open or closed as configured."""


class SpendStore(Protocol):
    def reserve(
        self, targets: Sequence[Target], keys: Sequence[str], estimate: int, reservation_id: str
    ) -> Blocked | None:
        """Refuse (first hard target over its limit) or add `estimate` and one request to every key."""

    def settle(self, reservation: Reservation, actual: int, tokens: int) -> tuple[list[int], list[tuple[int, int]]]:
        """Release the reservation's estimate (where it `held` one; else add the request it would
        have counted), add `actual` (-1: nothing) and tokens; claim thresholds reached.

        Returns the spend of each key after the update and (target index, threshold index) of each
        threshold this call was the first to reach. A store that can lose a reply (Redis) applies a
        reservation id's settle once, and knows itself whether that id's reservation was made.
        """

    def read(self, key: str) -> Counters: ...

    def recent(self, recent_key: str) -> list[int]: ...

    def blocked(self) -> dict[tuple[str, str], str]: ...

    def block(self, kind: str, value: str, reason: str) -> None: ...

    def unblock(self, kind: str, value: str) -> bool: ...

    def close(self) -> None: ...


def refusal(
    target: Target, spend: int, reserved: int, requests: int, tokens: int, estimate: int
) -> str | None:
    """Why a hard target refuses a call, or None. Spend exactly at the limit refuses even a $0 estimate."""
    if target.limit >= 0:
        taken = spend + reserved
        if taken >= target.limit or taken + estimate > target.limit:
            return KIND_USD
    if 0 <= target.max_requests <= requests:
        return KIND_REQUESTS
    if 0 <= target.max_tokens <= tokens:
        return KIND_TOKENS
    return None


def open_store(config: BudgetConfig, now: Callable[[], float]) -> SpendStore:
    """The store named by `config.store`; connecting is lazy, so an unreachable one fails per call."""
    url = config.store
    if url == "memory":
        from genai_meter.budgets._memory import MemoryStore

        return MemoryStore(now)
    if url.startswith("sqlite://"):
        from genai_meter.budgets._sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite://") :], now, timeout_s=max(config.store_timeout_s, 5.0))
    from genai_meter.budgets._redis import RedisStore

    return RedisStore(url, config.key_prefix, timeout_s=config.store_timeout_s)
