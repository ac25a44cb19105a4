"""The one live set of parts every instrumentor shares: configuration, prices, tracer, metrics,
budget guard and ledger writer.

It is built lazily on the first instrumented call (or by `configure()`), so `opentelemetry-instrument`
needs no code in the app. A configuration error raised by `configure()` reaches the caller; the same
error met under the launcher is logged once and the runtime falls back to the defaults, because a
zero-code plugin must not stop the app from starting.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ._attribution import Pseudonymizer
from ._config import Config, ConfigError, load_config
from ._faults import record_fault
from ._metrics import call_metrics_for
from ._version import __version__
from .pricing import PriceBook, PricingError

if TYPE_CHECKING:
    from .budgets import BudgetGuard, ThresholdEvent
    from .ledger import LedgerWriter

logger = logging.getLogger("genai_meter")


class Runtime:
    """Everything an instrumented call needs, built once from one `Config`."""

    def __init__(
        self,
        config: Config,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.config = config
        try:
            self.prices = PriceBook.load(config.pricing_file)
        except PricingError as error:
            raise ConfigError(str(error)) from None
        self.tracer = trace.get_tracer("genai_meter", __version__, tracer_provider)
        self.meter = metrics.get_meter("genai_meter", __version__, meter_provider)
        self.metrics = call_metrics_for(
            self.meter,
            label_cap=config.label_cap,
            user_labels=config.user_labels,
            tenant_labels=config.tenant_labels,
            max_series=config.max_series_per_metric,
        )
        self.pseudonymize = (
            Pseudonymizer(config.pseudonymize_users_key) if config.pseudonymize_users_key else None
        )
        self._warned_unpriced: set[tuple[str, str]] = set()
        self.metrics.ledger_counts = None
        self.guard: BudgetGuard | None = self._make_guard(config)
        self.ledger: LedgerWriter | None = self._make_ledger(config)
        self._metrics_server: Any = None

    def _make_guard(self, config: Config) -> BudgetGuard | None:
        if not config.budgets:
            return None
        from .budgets import BudgetGuard, BudgetPolicyError, parse_budget_config

        try:
            budget_config = parse_budget_config(config.budgets, config.source)
        except BudgetPolicyError as error:
            raise ConfigError(str(error)) from None
        return BudgetGuard(
            budget_config,
            meter=self.meter,
            label_cap=config.label_cap,
            on_threshold=_threshold_callbacks.fire,
        )

    def _make_ledger(self, config: Config) -> LedgerWriter | None:
        if not config.ledger_enabled:
            return None
        from .ledger import LedgerWriter, default_ledger_url

        writer = LedgerWriter(
            config.ledger_url or default_ledger_url(), metadata_keys=config.ledger_metadata_keys or None
        )
        self.metrics.ledger_counts = lambda: (writer.rows_written, writer.rows_spooled)
        return writer

    def warn_unpriced(self, provider: str, model: str) -> None:
        key = (provider, model)
        if key not in self._warned_unpriced:
            self._warned_unpriced.add(key)
            logger.warning(
                "genai-meter: model %r of provider %r is not in the pricing map; its calls are counted as "
                "unpriced (no cost, never $0). Add it to a pricing overrides file (GENAI_METER_PRICING_FILE).",
                model,
                provider,
            )

    def close(self) -> None:
        for part in (self.ledger, self.guard):
            if part is not None:
                try:
                    part.close()
                except Exception as error:
                    record_fault("runtime.close", error)


class _ThresholdCallbacks:
    """User callbacks for budget threshold events (the app's own notifications)."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def fire(self, event: ThresholdEvent) -> None:
        for callback in list(self.callbacks):
            try:
                callback(event)
            except Exception as error:
                record_fault("budget.threshold_callback", error)


_threshold_callbacks = _ThresholdCallbacks()
_lock = threading.Lock()
_runtime: Runtime | None = None
_providers: dict[str, Any] = {"tracer_provider": None, "meter_provider": None}


def set_providers(tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
    """Use these providers (from `Instrumentor.instrument(...)`) for the runtime built next."""
    global _runtime
    with _lock:
        if (
            tracer_provider is _providers["tracer_provider"]
            and meter_provider is _providers["meter_provider"]
        ):
            return
        _providers["tracer_provider"] = tracer_provider
        _providers["meter_provider"] = meter_provider
        old, _runtime = _runtime, None
    if old is not None:
        old.close()


def get_runtime() -> Runtime:
    """The live runtime, built from the environment on first use."""
    runtime = _runtime
    if runtime is not None:
        return runtime
    return _build(None)


def _build(overrides: dict[str, Any] | None) -> Runtime:
    global _runtime
    with _lock:
        if overrides is None and _runtime is not None:
            return _runtime
        if overrides is None:
            try:
                runtime = Runtime(load_config(), **_providers)
            except ConfigError as error:
                logger.error("genai-meter: %s; running with the default configuration instead", error)
                record_fault("config", error)
                runtime = Runtime(Config(), **_providers)
        else:
            runtime = Runtime(load_config(**overrides), **_providers)
        old, _runtime = _runtime, runtime
    if old is not None:
        old.close()
    return runtime


def configure(**overrides: Any) -> Runtime:
    """Rebuild the runtime from the environment, the config file and these keys; raises ConfigError."""
    return _build(dict(overrides))


def reset_runtime() -> None:
    """Drop the runtime (tests, uninstrument); the next call builds a fresh one."""
    global _runtime
    with _lock:
        old, _runtime = _runtime, None
    if old is not None:
        old.close()


def on_budget_threshold(callback: Any) -> Any:
    """Register `callback(event)` for budget threshold crossings; usable as a decorator."""
    _threshold_callbacks.callbacks.append(callback)
    return callback


@atexit.register
def _close_at_exit() -> None:
    runtime = _runtime
    if runtime is not None:
        runtime.close()
