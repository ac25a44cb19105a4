"""Budgets: spend limits per user, tenant, feature or globally, checked before each LLM call.

Usage (the instrumentation does this around every call)::

    guard = BudgetGuard(parse_budget_config(config["budgets"], source="genai-meter.yaml"))
    reservation = guard.check_and_reserve(PendingCall("openai", "gpt-4o", "chat", user="u1",
                                                      tenant="acme", estimate_usd=0.02))
    # ... the provider call (not made if BudgetExceeded was raised) ...
    if reservation is not None:
        events = guard.settle(reservation, actual_cost_usd=0.013, tokens=1200)

A call reserves its estimated cost on every budget that applies and settles with the real cost
afterwards, so concurrent calls cannot overshoot a hard limit by more than the reservations in
flight. Spend lives in memory, in SQLite (one host) or in Redis (many hosts); see docs/budgets.md.
"""

from genai_meter.budgets._config import BlockEntry, BudgetConfig, BudgetPolicy, parse_budget_config
from genai_meter.budgets._errors import BudgetExceeded, BudgetPolicyError
from genai_meter.budgets._guard import BudgetGuard
from genai_meter.budgets._status import LEVEL_CRITICAL, LEVEL_EXCEEDED, LEVEL_OK, LEVEL_WARNING
from genai_meter.budgets._store import StoreUnavailable
from genai_meter.budgets._types import BudgetStatus, PendingCall, Reservation, ThresholdEvent

__all__ = [
    "LEVEL_CRITICAL",
    "LEVEL_EXCEEDED",
    "LEVEL_OK",
    "LEVEL_WARNING",
    "BlockEntry",
    "BudgetConfig",
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetPolicy",
    "BudgetPolicyError",
    "BudgetStatus",
    "PendingCall",
    "Reservation",
    "StoreUnavailable",
    "ThresholdEvent",
    "parse_budget_config",
]
