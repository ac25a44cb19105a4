"""genai-meter: what your LLM calls cost, who caused the spend, and a budget that can stop it.

Zero code: `pip install genai-meter`, then `opentelemetry-instrument python app.py`. In code::

    import genai_meter

    with genai_meter.attribute(user="u-42", tenant="acme", feature="summarise"):
        client.chat.completions.create(...)

    try:
        ...
    except genai_meter.BudgetExceeded as exceeded:
        ...  # the call was not sent; exceeded.resets_at says when the period rolls over

Everything named here is the public API; modules with a leading underscore are private.
"""

from __future__ import annotations

from typing import Any

from . import names
from ._attribution import Attribution, attribute, current_attribution
from ._config import Config, ConfigError
from ._prometheus import serve_metrics
from ._record import CallRecord
from ._runtime import on_budget_threshold
from ._usage import Usage
from ._version import __version__
from .budgets import BudgetExceeded, BudgetStatus, ThresholdEvent
from .pricing import Cost, PriceBook, PricingError


def configure(**settings: Any) -> Config:
    """Apply settings over the environment and the `GENAI_METER_CONFIG` file; raises ConfigError
    naming a wrong key or value. Keys are those of `Config` (see docs/configuration.md)."""
    from ._runtime import configure as _configure

    return _configure(**settings).config


def flush(timeout: float = 5.0) -> bool:
    """Write out what is held in memory now: calls whose recording waits for the background drain,
    pending histogram records and ledger rows (a batch job before it exits, a test before it reads
    the ledger). True when everything was written or spooled within the timeout. Exit does this by
    itself."""
    from ._metrics import drain_all
    from ._runtime import get_runtime

    runtime = get_runtime()
    runtime.metrics.deferred.drain()
    drain_all()
    return runtime.ledger.flush(timeout) if runtime.ledger is not None else True


def budget_status(
    *, user: str | int | None = None, tenant: str | int | None = None, feature: str | int | None = None
) -> list[BudgetStatus]:
    """The budgets that apply to this user / tenant / feature, with spend, limit, level and an
    estimate of the uses left, for an app's own UI. Empty when no budget is configured.

    `user` is the app's own id, as given to `attribute()`: with `pseudonymize_users_key` set it is
    pseudonymised here, as every call's user is before the budgets see it."""
    from ._attribution import as_text
    from ._runtime import get_runtime

    runtime = get_runtime()
    guard = runtime.guard
    if guard is None:
        return []
    user_text = as_text(user)  # (as `attribute()` takes it: user 42 is "42")
    if user_text is not None and runtime.pseudonymize is not None:
        user_text = runtime.pseudonymize(user_text)
    return guard.status(user=user_text, tenant=as_text(tenant), feature=as_text(feature))


__all__ = [
    "Attribution",
    "BudgetExceeded",
    "BudgetStatus",
    "CallRecord",
    "Config",
    "ConfigError",
    "Cost",
    "PriceBook",
    "PricingError",
    "ThresholdEvent",
    "Usage",
    "__version__",
    "attribute",
    "budget_status",
    "configure",
    "current_attribution",
    "flush",
    "names",
    "on_budget_threshold",
    "serve_metrics",
]
