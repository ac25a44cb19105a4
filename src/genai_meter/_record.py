"""`CallRecord`: everything known about one finished LLM call, as handed to the ledger and budgets.

It is built once per call after the span's attributes are set; the ledger stores it as one row and
the budget guard settles with its cost. It holds no prompt or completion text.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

# Ledger request ids: a random prefix per process and a counter, so a call pays no system call for
# randomness (uuid4 reads os.urandom, ~2 µs). A forked worker draws its own prefix.
_request_prefix = ""
_request_counter = itertools.count()


def _new_request_prefix() -> None:
    global _request_prefix, _request_counter
    _request_prefix = uuid.uuid4().hex[:16]
    _request_counter = itertools.count()


_new_request_prefix()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_request_prefix)


def new_request_id() -> str:
    """32 hex digits, unique across processes (random prefix) and within one (counter)."""
    return f"{_request_prefix}{next(_request_counter):016x}"


@dataclass(slots=True)
class CallRecord:
    """One billed (or failed, or blocked) call.

    `time` is the Unix time in seconds at which the call started; `latency_s` its duration.
    Costs are `None` when the model is unpriced (never 0 for "unknown"). `request_id` is the
    idempotency key when the provider returned no response id (blocked or failed calls).
    """

    time: float
    provider: str
    operation: str
    request_model: str
    response_model: str | None = None
    response_id: str | None = None
    request_id: str = ""
    user: str | None = None
    tenant: str | None = None
    feature: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    cost_input_usd: float | None = None
    cost_cache_read_usd: float | None = None
    cost_cache_write_usd: float | None = None
    cost_output_usd: float | None = None
    cost_usd: float | None = None
    cost_source: str | None = None
    pricing_version: str | None = None
    latency_s: float = 0.0
    stream: bool = False
    outcome: str = "ok"
    error_type: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # the tier the provider says it served the call at (OpenAI's `service_tier`: flex and priority
    # are priced apart), where it says one
    service_tier: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The provider's response id where there is one, else the request id made for the call."""
        return self.response_id or self.request_id
