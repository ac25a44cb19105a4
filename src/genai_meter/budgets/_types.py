"""The values the guard exchanges with the instrumentation, the app and its own stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from genai_meter import names

NANO = 1_000_000_000
"""Stores count nano-dollars as integers: floats drift when reservations are added and removed."""


def to_nano(usd: float) -> int:
    return round(usd * NANO)


@dataclass(slots=True)
class PendingCall:
    """A call about to be sent. `estimate_usd` is None when the price or max_tokens is unknown."""

    provider: str
    model: str
    operation: str
    user: str | None = None
    tenant: str | None = None
    feature: str | None = None
    estimate_usd: float | None = None


@dataclass(slots=True)
class ThresholdEvent:
    """A threshold crossed; fires once per budget, scope value and period across all processes."""

    budget: str
    scope_value: str
    threshold_percent: float
    spend_usd: float
    limit_usd: float
    period_start: datetime
    period_end: datetime

    def span_attributes(self) -> dict[str, str | float]:
        """Attributes for the `genai_meter.budget.threshold` span event."""
        return {
            names.BUDGET_NAME_ATTR: self.budget,
            names.BUDGET_SCOPE_ATTR: self.scope_value,
            names.BUDGET_THRESHOLD_ATTR: self.threshold_percent,
        }


@dataclass(slots=True)
class BudgetStatus:
    """One budget as it applies to a user / tenant / feature, for an app's own UI.

    `level` is ok, warning, critical or exceeded. `uses_remaining_*` are None when there is no
    history of per-call costs to estimate from; `confidence` is 0..1.
    """

    budget: str
    scope_value: str
    period_start: datetime
    period_end: datetime
    spend_usd: float
    limit_usd: float | None
    percent_used: float
    level: str
    uses_remaining_min: int | None
    uses_remaining_max: int | None
    confidence: float
    mode: str = "soft"
    reserved_usd: float = 0.0
    requests: int = 0
    max_requests: int | None = None
    tokens: int = 0
    max_tokens: int | None = None


@dataclass(slots=True, eq=False)
class Target:
    """One budget counter (policy x scope value); cached, its key changes when the period rolls."""

    policy_index: int
    budget: str
    scope_value: str
    label: str
    limit: int  # nano-USD, -1 when the budget has no USD limit
    hard: bool
    max_requests: int  # -1 when unlimited
    max_tokens: int  # -1 when unlimited
    fields: tuple[str, ...]  # store field names of the thresholds, e.g. "t75"
    amounts: tuple[int, ...]  # nano-USD at which each threshold fires
    percents: tuple[float, ...]
    block_field: str  # threshold field claimed by the first blocked call ("" for none)
    fail_closed: bool
    recent_key: str
    ttl: int  # seconds a counter is kept after its last write: the period plus a grace of two days
    key: str = ""
    period_start: float = 0.0
    period_end: float = -1.0
    last_spend: int = -1  # as last seen in the store, for the spend gauge; -1 = not seen
    last_key: str = ""  # the key `last_spend` was read under (a rolled period reports 0)


@dataclass(slots=True, eq=False)
class Reservation:
    """What `check_and_reserve` took; hand it back to `settle` exactly once.

    `held` is False for a call sent while the store could not be reached (the guard failing open):
    nothing was reserved, and its settle counts its request as well as its cost, so that a store
    outage does not give away the calls made during it. `id` names the reservation to a store that
    can lose a reply (Redis): a settle sent twice, or a reservation whose reply was lost, then
    counts once."""

    targets: tuple[Target, ...]
    keys: tuple[str, ...]
    estimate: int  # nano-USD reserved on every target (or that the store was asked to reserve)
    like_key: tuple[str, str, str]
    settled: bool = False
    held: bool = True
    id: str = ""

    @property
    def estimate_usd(self) -> float:
        return self.estimate / NANO

    @property
    def budgets(self) -> tuple[str, ...]:
        return tuple(t.budget for t in self.targets)


@dataclass(slots=True)
class Blocked:
    """A store's answer when a hard target refuses the reservation."""

    index: int
    kind: str
    spend: int
    reserved: int
    requests: int
    tokens: int
    fired: bool  # this block claimed the target's block_field threshold


@dataclass(slots=True)
class Counters:
    spend: int = 0
    reserved: int = 0
    requests: int = 0
    tokens: int = 0
    fired: tuple[str, ...] = field(default_factory=tuple)
