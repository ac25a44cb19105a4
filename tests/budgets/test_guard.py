"""Enforcement against each store (memory, SQLite, Redis): modes, scopes, periods, limits, status."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall, ThresholdEvent, parse_budget_config

from .conftest import Clock

Make = Callable[..., BudgetGuard]
BERLIN = ZoneInfo("Europe/Berlin")


def call(estimate: float | None = 0.01, **who: str) -> PendingCall:
    return PendingCall("openai", "gpt-4o", "chat", estimate_usd=estimate, **who)


def spend(
    guard: BudgetGuard, cost: float, n: int, *, estimate: float = 0.01, **who: str
) -> list[ThresholdEvent]:
    events: list[ThresholdEvent] = []
    for _ in range(n):
        reservation = guard.check_and_reserve(call(estimate, **who))
        assert reservation is not None
        events += guard.settle(reservation, cost)
    return events


def test_no_budget_applies_returns_none(make_guard: Make) -> None:
    guard = make_guard([{"name": "t", "scope": "tenant", "limit_usd": 1, "mode": "hard"}])
    assert guard.check_and_reserve(call(user="u1")) is None
    assert guard.status(user="u1") == []


def test_soft_budget_warns_but_never_blocks(make_guard: Make) -> None:
    guard = make_guard([{"name": "soft", "limit_usd": 1, "mode": "soft"}])
    events = spend(guard, 0.25, 6)
    assert [(e.threshold_percent, round(e.spend_usd, 9)) for e in events] == [
        (75.0, 0.75),
        (90.0, 1.0),
        (100.0, 1.0),
    ]
    [status] = guard.status()
    assert status.spend_usd == pytest.approx(1.5, abs=1e-9)
    assert (status.percent_used, status.level, status.mode) == (150.0, "exceeded", "soft")


def test_hard_budget_blocks_at_the_limit(make_guard: Make, clock: Clock) -> None:
    guard = make_guard(
        [
            {
                "name": "hard",
                "scope": "tenant",
                "limit_usd": 0.05,
                "mode": "hard",
                "period": "day",
                "timezone": "Europe/Berlin",
            }
        ]
    )
    events = spend(guard, 0.01, 5, tenant="acme")
    assert [e.threshold_percent for e in events] == [75.0, 90.0, 100.0]
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(tenant="acme"))
    exceeded = caught.value
    assert (exceeded.budget, exceeded.scope_value, exceeded.kind, exceeded.reason) == (
        "hard",
        "acme",
        "usd",
        None,
    )
    assert exceeded.limit_usd == pytest.approx(0.05, abs=1e-9)
    assert exceeded.spend_usd == pytest.approx(0.05, abs=1e-9)
    assert exceeded.resets_at == datetime(2025, 3, 13, tzinfo=BERLIN)
    assert exceeded.events == []  # 100 % already fired when spend reached the limit
    [status] = guard.status(tenant="acme")
    assert (status.requests, status.reserved_usd, status.level) == (5, 0.0, "exceeded")


def test_hard_budget_refuses_a_call_whose_estimate_does_not_fit(make_guard: Make) -> None:
    guard = make_guard([{"name": "hard", "limit_usd": 1, "mode": "hard"}])
    spend(guard, 0.5, 1)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(0.6))
    # The first blocked call fires the 100 % threshold: the budget now stops calls.
    assert [e.threshold_percent for e in caught.value.events] == [100.0]
    assert caught.value.spend_usd == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(BudgetExceeded) as again:
        guard.check_and_reserve(call(0.6))
    assert again.value.events == []
    assert guard.check_and_reserve(call(0.4)) is not None  # a call that fits still goes


def test_reservations_in_flight_count_against_the_limit(make_guard: Make) -> None:
    guard = make_guard([{"name": "hard", "limit_usd": 0.03, "mode": "hard"}])
    held = [guard.check_and_reserve(call(0.01)) for _ in range(3)]
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(call(0.01))
    [status] = guard.status()
    assert status.reserved_usd == pytest.approx(0.03, abs=1e-9)
    for reservation in held:
        assert reservation is not None
        guard.settle(reservation, 0.005)
    [status] = guard.status()
    assert (status.spend_usd, status.reserved_usd) == (pytest.approx(0.015, abs=1e-9), 0.0)
    assert guard.check_and_reserve(call(0.01)) is not None


def test_unknown_cost_releases_and_double_settle_is_ignored(make_guard: Make) -> None:
    guard = make_guard([{"name": "hard", "limit_usd": 0.02, "mode": "hard"}])
    first = guard.check_and_reserve(call(0.02))
    assert first is not None
    assert guard.settle(first, None, tokens=40) == []
    assert guard.settle(first, 0.02) == []  # second settle of the same reservation: no effect
    [status] = guard.status()
    assert (status.spend_usd, status.reserved_usd, status.requests, status.tokens) == (0.0, 0.0, 1, 40)


def test_estimate_from_recent_like_calls(make_guard: Make) -> None:
    guard = make_guard([{"name": "hard", "limit_usd": 0.1, "mode": "hard"}])
    first = guard.check_and_reserve(call(None))
    assert first is not None and first.estimate_usd == 0.0  # nothing known yet
    guard.settle(first, 0.03)
    second = guard.check_and_reserve(call(None))
    assert second is not None and second.estimate_usd == pytest.approx(0.03, abs=1e-9)
    guard.settle(second, 0.02)
    third = guard.check_and_reserve(call(None))
    assert third is not None and third.estimate_usd == pytest.approx(0.03, abs=1e-9)  # dearest recent call
    other = guard.check_and_reserve(PendingCall("openai", "gpt-4o-mini", "chat"))
    assert other is not None and other.estimate == 0


def test_scopes(make_guard: Make) -> None:
    guard = make_guard(
        [
            {"name": "global", "limit_usd": 100},
            {"name": "per-tenant", "scope": "tenant", "limit_usd": 10},
            {"name": "acme-only", "scope": "tenant", "match": {"tenant": "acme"}, "limit_usd": 5},
            {
                "name": "tenant-feature",
                "scope": ["tenant", "feature"],
                "match": {"tenant": "acme"},
                "limit_usd": 1,
            },
            {"name": "per-user", "scope": "user", "limit_usd": 2},
        ]
    )
    spend(guard, 0.5, 1, user="u1", tenant="acme", feature="search")
    spend(guard, 0.25, 1, user="u2", tenant="acme", feature="chat")
    spend(guard, 0.125, 1, user="u1", tenant="beta", feature="search")
    spend(guard, 1.0, 1)  # no attribution: only the global budget

    def seen(**who: str) -> dict[tuple[str, str], float]:
        return {(s.budget, s.scope_value): round(s.spend_usd, 9) for s in guard.status(**who)}

    assert seen(user="u1", tenant="acme", feature="search") == {
        ("global", "global"): 1.875,
        ("per-tenant", "acme"): 0.75,
        ("acme-only", "acme"): 0.75,
        ("tenant-feature", "acme/search"): 0.5,
        ("per-user", "u1"): 0.625,
    }
    assert seen(tenant="beta", feature="search") == {
        ("global", "global"): 1.875,
        ("per-tenant", "beta"): 0.125,
    }
    assert seen(tenant="acme", feature="chat") == {
        ("global", "global"): 1.875,
        ("per-tenant", "acme"): 0.75,
        ("acme-only", "acme"): 0.75,
        ("tenant-feature", "acme/chat"): 0.25,
    }


def spent(guard: BudgetGuard, **who: str) -> dict[tuple[str, str], float]:
    return {(s.budget, s.scope_value): round(s.spend_usd, 9) for s in guard.status(**who)}


def test_combinations_that_join_alike_have_their_own_counters(make_guard: Make) -> None:
    """`acme/search` + `x` and `acme` + `search/x` would both join to `acme/search/x`: each value's
    own `/` (and `%`) is escaped, so they are two budgets; a one-dimension value is shown as it is."""
    guard = make_guard(
        [
            {"name": "tf", "scope": ["tenant", "feature"], "limit_usd": 1, "mode": "hard"},
            {"name": "t", "scope": "tenant", "limit_usd": 10},
        ]
    )
    spend(guard, 0.95, 1, tenant="acme/search", feature="x")
    assert guard.check_and_reserve(call(0.1, tenant="acme", feature="search/x")) is not None
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(0.1, tenant="acme/search", feature="x"))
    assert (caught.value.budget, caught.value.scope_value) == ("tf", "acme%2Fsearch/x")
    assert spent(guard, tenant="acme/search", feature="x") == {
        ("tf", "acme%2Fsearch/x"): 0.95,
        ("t", "acme/search"): 0.95,
    }
    assert spent(guard, tenant="acme", feature="search/x") == {
        ("tf", "acme/search%2Fx"): 0.0,
        ("t", "acme"): 0.0,
    }
    spend(guard, 0.25, 1, tenant="a%2Fb", feature="c")
    assert spent(guard, tenant="a%2Fb", feature="c")[("tf", "a%252Fb/c")] == 0.25
    assert spent(guard, tenant="a/b", feature="c")[("tf", "a%2Fb/c")] == 0.0


def test_budget_names_and_scope_values_never_share_a_counter(make_guard: Make) -> None:
    """Budget `a|b` for tenant `c` and budget `a` for tenant `b|c` would both be counter `a|b|c|...`."""
    guard = make_guard(
        [{"name": "a|b", "scope": "tenant", "limit_usd": 1}, {"name": "a", "scope": "tenant", "limit_usd": 1}]
    )
    spend(guard, 0.5, 1, tenant="c")
    assert spent(guard, tenant="c") == {("a|b", "c"): 0.5, ("a", "c"): 0.5}
    assert spent(guard, tenant="b|c") == {("a|b", "b|c"): 0.0, ("a", "b|c"): 0.0}


def test_plain_counters_keep_the_keys_of_earlier_releases(tmp_path: Path, clock: Clock) -> None:
    """Escaping changes no key of a plain name and plain values, so an upgrade in mid-period keeps
    their spend (a SQLite store written by the previous release: `name|scope value|period start`)."""
    db = tmp_path / "budgets.db"
    guard = BudgetGuard(
        parse_budget_config(
            {
                "store": f"sqlite://{db}",
                "policies": [{"name": "tf", "scope": ["tenant", "feature"], "period": "day", "limit_usd": 1}],
            },
            "test.yaml",
        ),
        clock=clock,
    )
    assert guard.blocked() == {}  # opens the store: its tables exist
    start = int(datetime(2025, 3, 12, tzinfo=timezone.utc).timestamp())
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO budget_counters (key, spend, requests, expires_at) VALUES (?, ?, ?, ?)",
            (f"tf|acme/search|{start}", 300_000_000, 3, start + 3 * 86400),
        )
    [status] = guard.status(tenant="acme", feature="search")
    guard.close()
    assert (status.scope_value, status.spend_usd, status.requests) == ("acme/search", 0.3, 3)


def test_each_hard_budget_of_a_call_can_block_and_none_is_charged(make_guard: Make) -> None:
    guard = make_guard(
        [
            {"name": "tenant", "scope": "tenant", "limit_usd": 10, "mode": "hard"},
            {"name": "user", "scope": "user", "limit_usd": 0.02, "mode": "hard"},
        ]
    )
    spend(guard, 0.01, 2, user="u1", tenant="acme")
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(user="u1", tenant="acme"))
    assert (caught.value.budget, caught.value.scope_value) == ("user", "u1")
    statuses = {s.budget: s for s in guard.status(user="u1", tenant="acme")}
    assert (
        statuses["tenant"].requests == 2 and statuses["tenant"].reserved_usd == 0.0
    )  # refused call took nothing
    assert guard.check_and_reserve(call(user="u2", tenant="acme")) is not None


def test_day_rollover_at_local_midnight(make_guard: Make, clock: Clock) -> None:
    clock.set(datetime(2025, 3, 12, 22, 30, tzinfo=timezone.utc))  # 23:30 in Berlin
    guard = make_guard(
        [{"name": "daily", "limit_usd": 0.02, "mode": "hard", "period": "day", "timezone": "Europe/Berlin"}]
    )
    spend(guard, 0.01, 2)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call())
    assert caught.value.resets_at == datetime(2025, 3, 13, tzinfo=BERLIN)
    clock.advance(minutes=29, seconds=59)  # 23:59:59 Berlin: still blocked
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(call())
    clock.advance(seconds=1)  # midnight in Berlin (23:00 UTC): a new period, and thresholds fire again
    events = spend(guard, 0.01, 2)
    assert [e.threshold_percent for e in events] == [75.0, 90.0, 100.0]
    assert events[0].period_start == datetime(2025, 3, 13, tzinfo=BERLIN)
    [status] = guard.status()
    assert status.period_start == datetime(2025, 3, 13, tzinfo=BERLIN)
    assert status.spend_usd == pytest.approx(0.02, abs=1e-9)


@pytest.mark.parametrize(
    ("period", "before", "after"),
    [
        (
            "week",
            datetime(2025, 3, 16, 22, 59, tzinfo=timezone.utc),
            datetime(2025, 3, 16, 23, tzinfo=timezone.utc),
        ),
        (
            "month",
            datetime(2025, 3, 31, 21, 59, tzinfo=timezone.utc),
            datetime(2025, 3, 31, 22, tzinfo=timezone.utc),
        ),
        (
            "day",
            datetime(2025, 3, 29, 22, 59, tzinfo=timezone.utc),
            datetime(2025, 3, 29, 23, tzinfo=timezone.utc),
        ),
    ],
)
def test_week_and_month_rollover(
    make_guard: Make, clock: Clock, period: str, before: datetime, after: datetime
) -> None:
    clock.set(before)
    guard = make_guard(
        [{"name": "p", "limit_usd": 0.01, "mode": "hard", "period": period, "timezone": "Europe/Berlin"}]
    )
    spend(guard, 0.01, 1)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call())
    assert caught.value.resets_at is not None and caught.value.resets_at.timestamp() == after.timestamp()
    clock.set(after)
    assert guard.check_and_reserve(call()) is not None


def test_request_and_token_limits(make_guard: Make, clock: Clock) -> None:
    guard = make_guard(
        [
            {"name": "rate", "scope": "user", "period": "minute", "max_requests": 3, "mode": "hard"},
            {"name": "tokens", "scope": "tenant", "period": "day", "max_tokens": 1000, "mode": "hard"},
        ]
    )
    for _ in range(3):
        reservation = guard.check_and_reserve(call(user="u1"))
        assert reservation is not None
        guard.settle(reservation, 0.001)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(user="u1"))
    assert (caught.value.budget, caught.value.kind) == ("rate", "requests")
    [status] = guard.status(user="u1")
    assert (status.uses_remaining_min, status.uses_remaining_max, status.percent_used) == (0, 0, 100.0)
    clock.advance(minutes=1)
    assert guard.check_and_reserve(call(user="u1")) is not None

    reservation = guard.check_and_reserve(call(tenant="acme"))
    assert reservation is not None
    guard.settle(reservation, 0.01, tokens=1000)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(tenant="acme"))
    assert (caught.value.budget, caught.value.kind) == ("tokens", "tokens")


def test_block_list(make_guard: Make) -> None:
    guard = make_guard([], section={"blocked": [{"tenant": "evil", "reason": "unpaid invoice"}]})
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(tenant="evil", user="u1"))
    assert (caught.value.budget, caught.value.scope_value, caught.value.reason, caught.value.kind) == (
        "block_list",
        "evil",
        "unpaid invoice",
        "block_list",
    )
    assert caught.value.resets_at is None
    assert guard.check_and_reserve(call(user="u1")) is None
    guard.block("user", "u1", "abuse")
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(user="u1"))
    assert caught.value.reason == "abuse"
    assert guard.blocked() == {("user", "u1"): "abuse", ("tenant", "evil"): "unpaid invoice"}
    assert guard.unblock("user", "u1") is True
    assert guard.unblock("user", "u1") is False  # no longer blocked
    assert guard.unblock("tenant", "evil") is False  # in the configuration file, not the store
    assert guard.check_and_reserve(call(user="u1")) is None
    with pytest.raises(ValueError):
        guard.block("feature", "x", "no")


def test_block_is_seen_by_another_guard_on_a_shared_store(
    make_guard: Make, store: dict[str, Any], clock: Clock
) -> None:
    if store["store"] == "memory":
        # One process's memory is not shared: each guard keeps its own block list.
        first, second = make_guard([]), make_guard([])
        first.block("user", "u9", "fraud")
        assert second.check_and_reserve(call(user="u9")) is None
        return
    first = make_guard([], section={"block_refresh_s": 5})
    second = make_guard([], section={"block_refresh_s": 5})
    assert second.check_and_reserve(call(user="u9")) is None
    first.block("user", "u9", "fraud")
    assert second.check_and_reserve(call(user="u9")) is None  # still within the refresh interval
    clock.advance(seconds=5)
    with pytest.raises(BudgetExceeded) as caught:
        second.check_and_reserve(call(user="u9"))
    assert caught.value.reason == "fraud"


def test_status_levels_and_uses_remaining(make_guard: Make) -> None:
    guard = make_guard([{"name": "m", "scope": "user", "limit_usd": 1, "mode": "hard"}])
    [fresh] = guard.status(user="u1")
    assert (fresh.level, fresh.percent_used, fresh.uses_remaining_min, fresh.confidence) == (
        "ok",
        0.0,
        None,
        0.0,
    )
    costs = [0.05, 0.1] * 5  # $0.75 spent in ten calls of 5 and 10 cents
    for cost in costs:
        reservation = guard.check_and_reserve(call(0.1, user="u1"))
        assert reservation is not None
        guard.settle(reservation, cost)
    [status] = guard.status(user="u1")
    assert (status.level, status.percent_used) == ("warning", 75.0)
    assert (status.uses_remaining_min, status.uses_remaining_max) == (2, 5)  # $0.25 at 10 and at 5 cents
    # ten samples, spread (population stdev / mean) = 1/3 -> confidence 1 / (1 + 1/3)
    assert status.confidence == 0.75
    spend(guard, 0.15, 1, user="u1", estimate=0.15)
    [critical] = guard.status(user="u1")
    assert (critical.level, critical.percent_used) == ("critical", 90.0)


def test_thresholds_fire_once_under_threads(make_guard: Make) -> None:
    guard = make_guard([{"name": "soft", "limit_usd": 1}])
    fired: list[ThresholdEvent] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            reservation = guard.check_and_reserve(call(0.01))
            assert reservation is not None
            events = guard.settle(reservation, 0.01)
            with lock:
                fired.extend(events)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.threshold_percent for e in fired) == [75.0, 90.0, 100.0]
    [status] = guard.status()
    assert status.spend_usd == pytest.approx(2.0, abs=1e-9)
    assert status.requests == 200


def test_callback_gets_events_and_its_faults_stay_inside(make_guard: Make) -> None:
    received: list[ThresholdEvent] = []

    def callback(event: ThresholdEvent) -> None:
        received.append(event)
        raise RuntimeError("webhook down")

    guard = make_guard([{"name": "g", "limit_usd": 0.02, "thresholds": [50]}], on_threshold=callback)
    events = spend(guard, 0.01, 2)
    assert received == events
    assert [(e.budget, e.scope_value, e.threshold_percent, e.limit_usd) for e in events] == [
        ("g", "global", 50.0, 0.02)
    ]
