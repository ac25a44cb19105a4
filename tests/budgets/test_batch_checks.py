"""`check_batch` and `count_made` on every store: a batch is refused before it is sent where a hard
budget has no room for it, nothing is reserved by the check, and a batch's results are counted as
calls already made (never refused)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall

Make = Callable[..., BudgetGuard]
POLICIES = [
    {"name": "spend", "scope": "tenant", "limit_usd": 1.0, "mode": "hard"},
    {"name": "calls", "scope": "tenant", "max_requests": 5, "mode": "hard"},
]


def batch(estimate: float) -> PendingCall:
    return PendingCall("anthropic", "claude-sonnet-4-5", "batch", tenant="acme", estimate_usd=estimate)


def figures(guard: BudgetGuard) -> dict[str, tuple[float, float, int]]:
    statuses = guard.status(tenant="acme")
    return {s.budget: (round(s.spend_usd, 9), round(s.reserved_usd, 9), s.requests) for s in statuses}


def test_batches_checked_then_counted_as_read(make_guard: Make) -> None:
    guard = make_guard(POLICIES)
    call = guard.check_and_reserve(PendingCall("anthropic", "m", "chat", tenant="acme", estimate_usd=0.1))
    assert call is not None
    guard.settle(call, 0.25)
    with pytest.raises(BudgetExceeded) as refused:
        guard.check_batch(batch(0.8), 2)  # $0.25 spent + $0.80 > $1.00
    assert (refused.value.budget, refused.value.kind) == ("spend", "usd")
    with pytest.raises(BudgetExceeded) as refused:
        guard.check_batch(batch(0.1), 5)  # 1 request made + 5 > 5
    assert (refused.value.budget, refused.value.kind) == ("calls", "requests")
    guard.check_batch(batch(0.7), 4)  # fits: nothing is reserved or counted
    assert figures(guard) == {"spend": (0.25, 0.0, 1), "calls": (0.25, 0.0, 1)}
    for cost in (0.5, 0.5):  # the results, read: counted, never refused, past the limit
        result = guard.count_made(PendingCall("anthropic", "m", "chat", tenant="acme"))
        assert result is not None and not result.held
        guard.settle(result, cost)
    assert figures(guard) == {"spend": (1.25, 0.0, 3), "calls": (1.25, 0.0, 3)}
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(PendingCall("anthropic", "m", "chat", tenant="acme", estimate_usd=0.01))


def test_a_blocked_tenant_cannot_create_a_batch(make_guard: Make) -> None:
    guard = make_guard(POLICIES, section={"blocked": [{"tenant": "acme", "reason": "unpaid"}]})
    with pytest.raises(BudgetExceeded) as refused:
        guard.check_batch(batch(0.0), 1)
    assert refused.value.kind == "block_list"
