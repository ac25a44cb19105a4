"""The two exceptions of the budget component.

`BudgetExceeded` is the only exception genai-meter raises into an app on purpose, so it carries
everything an app needs to answer its own user (which budget, how much, when it resets) without
parsing a message. `BudgetPolicyError` is raised while reading the configuration, never per call.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from genai_meter import names

if TYPE_CHECKING:
    from genai_meter.budgets._types import ThresholdEvent

# Values of `BudgetExceeded.kind`: what stopped the call.
KIND_USD = "usd"
KIND_REQUESTS = "requests"
KIND_TOKENS = "tokens"
KIND_BLOCK_LIST = "block_list"
KIND_STORE_UNAVAILABLE = "store_unavailable"

# The budget name reported for calls stopped by the block list (a label value, not a metric name).
BLOCK_LIST_BUDGET = "block_list"


class BudgetExceeded(Exception):
    """The call was not sent: a hard budget is used up, or the user or tenant is blocked.

    `resets_at` is when the budget's period ends (`None` for the block list, which never resets
    by itself). `reason` is the block list's reason, or why the guard failed closed. `events`
    holds threshold events that fired because of this block (the 100 % threshold of a hard
    budget fires on the first blocked call if spend had not yet reached the limit exactly).
    """

    def __init__(
        self,
        budget: str,
        scope_value: str,
        limit_usd: float,
        spend_usd: float,
        resets_at: datetime | None,
        reason: str | None = None,
        *,
        kind: str = KIND_USD,
        events: list[ThresholdEvent] | None = None,
    ) -> None:
        self.budget = budget
        self.scope_value = scope_value
        self.limit_usd = limit_usd
        self.spend_usd = spend_usd
        self.resets_at = resets_at
        self.reason = reason
        self.kind = kind
        self.events: list[ThresholdEvent] = events or []
        super().__init__(self._message())

    def _message(self) -> str:
        if self.kind == KIND_BLOCK_LIST:
            return f"blocked: {self.scope_value} is on the block list ({self.reason or 'no reason given'})"
        resets = f"; resets at {self.resets_at.isoformat()}" if self.resets_at else ""
        if self.kind == KIND_STORE_UNAVAILABLE:
            return f"budget {self.budget!r} ({self.scope_value}) cannot be checked: {self.reason}{resets}"
        if self.kind == KIND_REQUESTS:
            what = "request limit reached"
        elif self.kind == KIND_TOKENS:
            what = "token limit reached"
        else:
            what = f"spent ${self.spend_usd:.4f} of ${self.limit_usd:.4f}"
        return f"budget {self.budget!r} ({self.scope_value}) exhausted: {what}{resets}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields would be lost by the default Exception pickling (multiprocessing).
        return (
            _rebuild,
            (
                self.budget,
                self.scope_value,
                self.limit_usd,
                self.spend_usd,
                self.resets_at,
                self.reason,
                self.kind,
                self.events,
            ),
        )

    def span_attributes(self) -> dict[str, str]:
        """Attributes for the `genai_meter.budget.blocked` span event."""
        return {names.BUDGET_NAME_ATTR: self.budget, names.BUDGET_SCOPE_ATTR: self.scope_value}


def _rebuild(
    budget: str,
    scope_value: str,
    limit_usd: float,
    spend_usd: float,
    resets_at: datetime | None,
    reason: str | None,
    kind: str,
    events: list[ThresholdEvent],
) -> BudgetExceeded:
    return BudgetExceeded(
        budget, scope_value, limit_usd, spend_usd, resets_at, reason, kind=kind, events=events
    )


class BudgetPolicyError(ValueError):
    """A budget policy is wrong; the message names the file, the budget and the field."""

    def __init__(
        self, message: str, *, source: str = "<config>", budget: str | None = None, field: str | None = None
    ) -> None:
        self.source = source
        self.budget = budget
        self.field = field
        where = source
        if budget is not None:
            where += f": budget {budget!r}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")
