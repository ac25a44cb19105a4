"""A settle the store refuses (a Redis blip, SQLite locked) is kept and applied later, exactly once.

Before, the estimate stayed reserved until the period ended and the real cost was never counted, so
a hard budget refused calls it had room for. The store's `settle` is made to fail by a thin wrapper
around the real store (memory, SQLite or Redis), so every figure here is exact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall, Reservation, ThresholdEvent, _guard
from genai_meter.budgets._store import SpendStore, StoreUnavailable
from genai_meter.budgets._types import Target

Make = Callable[..., BudgetGuard]


class FailingSettles:
    """The guard's real store, whose next `fail` settles raise StoreUnavailable (as a blip would)."""

    def __init__(self, store: SpendStore) -> None:
        self.store = store
        self.fail = 0
        self.settles = 0  # settles that reached the real store

    def settle(self, reservation: Reservation, actual: int, tokens: int) -> tuple[list[int], list[tuple[int, int]]]:
        if self.fail > 0:
            self.fail -= 1
            raise StoreUnavailable("budget store: connection reset (test)")
        self.settles += 1
        return self.store.settle(reservation, actual, tokens)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def failing(guard: BudgetGuard) -> FailingSettles:
    wrapper = FailingSettles(guard._store)
    guard._store = wrapper
    return wrapper


def reserve(guard: BudgetGuard, estimate: float, **who: str) -> Reservation:
    reservation = guard.check_and_reserve(PendingCall("openai", "gpt-4o", "chat", estimate_usd=estimate, **who))
    assert reservation is not None
    return reservation


def figures(guard: BudgetGuard) -> tuple[float, float, int, int]:
    [status] = guard.status()
    return round(status.spend_usd, 9), round(status.reserved_usd, 9), status.requests, status.tokens


def test_failed_settle_is_applied_by_the_next_call(make_guard: Make) -> None:
    guard = make_guard([{"name": "team", "limit_usd": 1.0, "mode": "hard", "period": "day"}])
    store = failing(guard)
    first = reserve(guard, 0.6)
    store.fail = 1
    assert guard.settle(first, 0.05, tokens=300) == []  # the store blipped: kept, not lost
    assert figures(guard) == (0.0, 0.6, 1, 0)
    # $0.05 was really spent: a $0.50 call fits in $1.00 (before, $0.60 stayed reserved and it was refused).
    second = reserve(guard, 0.5)
    assert figures(guard) == (0.05, 0.5, 2, 300)
    assert guard.settle(second, 0.45, tokens=100) == []
    assert figures(guard) == (0.5, 0.0, 2, 400)
    assert guard.settle(first, 0.05) == []  # settling the same reservation again changes nothing
    assert figures(guard) == (0.5, 0.0, 2, 400)
    assert store.settles == 2  # each settle reached the store once


def test_failed_settle_is_applied_by_the_next_settle(make_guard: Make) -> None:
    guard = make_guard([{"name": "team", "limit_usd": 10.0, "mode": "hard"}])
    store = failing(guard)
    first, second, third = reserve(guard, 0.3), reserve(guard, 0.2), reserve(guard, 0.1)
    store.fail = 2
    guard.settle(first, 0.25)
    guard.settle(second, None)  # an unknown cost releases; kept the same way
    assert figures(guard) == (0.0, 0.6, 3, 0)
    guard.settle(third, 0.125)
    assert figures(guard) == (0.375, 0.0, 3, 0)
    assert store.settles == 3


def test_settle_failing_again_stays_kept(make_guard: Make) -> None:
    guard = make_guard([{"name": "team", "limit_usd": 10.0, "mode": "hard"}])
    store = failing(guard)
    first, second = reserve(guard, 0.3), reserve(guard, 0.2)
    store.fail = 3  # first's settle, then its replay at second's settle, then first's replay at the next call
    guard.settle(first, 0.25)
    guard.settle(second, 0.125)  # the replay fails: second is kept behind first, not sent
    assert figures(guard) == (0.0, 0.5, 2, 0)
    unheld = guard.check_and_reserve(PendingCall("openai", "gpt-4o", "chat", estimate_usd=0.01))
    assert unheld is not None and not unheld.held  # the guard fails open: sent, nothing reserved
    assert figures(guard) == (0.0, 0.5, 2, 0)
    guard.close()  # close applies what is still kept
    assert store.settles == 2
    assert figures(guard) == (0.375, 0.0, 2, 0)


def test_threshold_reached_by_a_replayed_settle_fires_once(make_guard: Make) -> None:
    events: list[ThresholdEvent] = []
    guard = make_guard(
        [{"name": "team", "limit_usd": 0.1, "thresholds": [50, 100]}], on_threshold=events.append
    )
    store = failing(guard)
    first = reserve(guard, 0.01)
    store.fail = 1
    assert guard.settle(first, 0.06) == []
    assert events == []
    second = reserve(guard, 0.01)  # replays first: 60 % of $0.10
    assert [(e.budget, e.threshold_percent, round(e.spend_usd, 9)) for e in events] == [("team", 50.0, 0.06)]
    assert [e.threshold_percent for e in guard.settle(second, 0.04)] == [100.0]  # this call's own
    assert [e.threshold_percent for e in events] == [50.0, 100.0]
    assert figures(guard) == (0.1, 0.0, 2, 0)


def test_kept_settles_are_bounded(
    make_guard: Make, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_guard, "_UNSETTLED_MAX", 2)
    guard = make_guard([{"name": "team", "limit_usd": 10.0, "mode": "hard"}])
    store = failing(guard)
    calls = [reserve(guard, 0.5) for _ in range(3)]
    store.fail = 3  # the first settle, then the replay of the first kept one at each later settle
    with caplog.at_level(logging.WARNING, logger="genai_meter.budgets"):
        for reservation, cost in zip(calls, (0.25, 0.125, 0.0625), strict=True):
            guard.settle(reservation, cost)
    assert len([r for r in caplog.records if "the oldest are dropped" in r.getMessage()]) == 1
    assert figures(guard) == (0.0, 1.5, 3, 0)
    guard.close()
    # The oldest ($0.25, $0.50 reserved) was dropped: its estimate stays reserved, its cost uncounted.
    assert figures(guard) == (0.1875, 0.5, 3, 0)


def test_replays_under_threads_apply_each_settle_once(make_guard: Make) -> None:
    guard = make_guard([{"name": "team", "limit_usd": 100.0, "mode": "hard"}])
    store = failing(guard)
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    reserved = [0]

    def work() -> None:
        try:
            for i in range(50):
                reservation = guard.check_and_reserve(PendingCall("openai", "gpt-4o", "chat", estimate_usd=0.01))
                if reservation is None:  # a replay failed here: sent unmetered for the retry pause
                    continue
                with lock:
                    reserved[0] += 1
                    if i % 3 == 0:
                        store.fail += 1
                guard.settle(reservation, 0.001, tokens=1)
        except BaseException as error:  # BudgetExceeded included: nothing may be refused here
            unexpected.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.fail = 0
    guard.close()
    assert unexpected == []
    assert reserved[0] > 50
    n = reserved[0]
    assert figures(guard) == (round(n * 0.001, 9), 0.0, n, n)


def test_hard_budget_is_not_refused_after_a_blip(make_guard: Make) -> None:
    guard = make_guard([{"name": "team", "limit_usd": 1.0, "mode": "hard"}])
    store = failing(guard)
    for _ in range(5):  # five blips on five settles in a row: nothing stays reserved
        reservation = reserve(guard, 0.6)
        store.fail = 1
        guard.settle(reservation, 0.01)
    reserve(guard, 0.9)
    assert figures(guard) == (0.05, 0.9, 6, 0)
    with pytest.raises(BudgetExceeded):
        reserve(guard, 0.1)


class Outage:
    """The guard's real store, whose next `fail` reserves raise StoreUnavailable; with `lose_reply`,
    the next store operation runs in the real store and its reply is lost (a timeout while reading
    it: what Redis did is done, the guard is told the store failed)."""

    def __init__(self, store: SpendStore) -> None:
        self.store = store
        self.fail = 0
        self.lose_reply = False

    def reserve(self, targets: Sequence[Target], keys: Sequence[str], estimate: int, reservation_id: str) -> Any:
        if self.fail > 0:
            self.fail -= 1
            raise StoreUnavailable("budget store: connection refused (test)")
        answer = self.store.reserve(targets, keys, estimate, reservation_id)
        return self._answer(answer)

    def settle(self, *args: Any, **kwargs: Any) -> Any:
        return self._answer(self.store.settle(*args, **kwargs))

    def _answer(self, answer: Any) -> Any:
        if self.lose_reply:
            self.lose_reply = False
            raise StoreUnavailable("budget store: timeout reading the reply (test)")
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_calls_sent_in_an_outage_are_counted_once_it_ends(make_guard: Make, clock: Any) -> None:
    guard = make_guard([{"name": "team", "limit_usd": 1.0, "mode": "hard", "max_requests": 4}])
    store = Outage(guard._store)
    guard._store = store  # type: ignore[assignment]
    store.fail = 1
    first = reserve(guard, 0.5)  # the store refuses: sent all the same (fail open), holding nothing
    assert not first.held
    second = reserve(guard, 0.5)  # within the retry pause: not tried, sent holding nothing
    assert not second.held and store.fail == 0
    assert guard.settle(first, 0.25, tokens=100) == []
    assert guard.settle(second, 0.125, tokens=50) == []  # kept, the store is not tried meanwhile
    assert figures(guard) == (0.0, 0.0, 0, 0)
    clock.advance(seconds=2)  # past the pause: the next call reaches the store, which counts both first
    third = reserve(guard, 0.5)
    assert third.held
    assert figures(guard) == (0.375, 0.5, 3, 150)
    guard.settle(third, 0.5)
    assert figures(guard) == (0.875, 0.0, 3, 150)
    assert reserve(guard, 0.0).held  # the fourth request of four
    with pytest.raises(BudgetExceeded):  # the outage's two calls count against the request limit
        reserve(guard, 0.0)


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_a_settle_whose_reply_was_lost_counts_once(make_guard: Make) -> None:
    """Redis ran the settle, the reply was lost: the guard keeps it and replays it, which Redis
    recognises by the reservation's id (before, the cost was counted twice and the estimate released
    twice)."""
    guard = make_guard([{"name": "team", "limit_usd": 10.0, "mode": "hard"}])
    store = Outage(guard._store)
    guard._store = store  # type: ignore[assignment]
    first, second = reserve(guard, 0.3), reserve(guard, 0.2)
    store.lose_reply = True
    assert guard.settle(first, 0.25, tokens=100) == []  # applied in Redis, the guard does not know it
    assert figures(guard) == (0.25, 0.2, 2, 100)
    guard.settle(second, 0.125)  # replays first's settle: changes nothing; then second's
    assert figures(guard) == (0.375, 0.0, 2, 100)
    assert not guard._unsettled


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_a_reservation_whose_reply_was_lost_is_released_by_its_settle(make_guard: Make, clock: Any) -> None:
    """Redis made the reservation, the reply was lost: the guard sends the call unreserved (fail
    open); its settle finds the reservation Redis made and releases it, counting the request once
    (before, the estimate stayed reserved until the period ended)."""
    guard = make_guard([{"name": "team", "limit_usd": 10.0, "mode": "hard"}])
    store = Outage(guard._store)
    guard._store = store  # type: ignore[assignment]
    store.lose_reply = True
    call = reserve(guard, 0.3)
    assert not call.held
    assert figures(guard) == (0.0, 0.3, 1, 0)
    clock.advance(seconds=2)
    guard.settle(call, 0.25, tokens=10)
    assert figures(guard) == (0.25, 0.0, 1, 10)
