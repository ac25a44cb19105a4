"""The one live set of parts every instrumentor shares: configuration, prices, tracer, metrics,
budget guard and ledger writer.

It is built lazily on the first instrumented call (or by `configure()`), so `opentelemetry-instrument`
needs no code in the app. A configuration error raised by `configure()` reaches the caller. The same
error met under the launcher is logged once and counted, and only what it touches is given up: a
wrong key falls back to its default (every other key keeps its value), and a part that cannot be
built (prices, budget guard, ledger writer) is replaced by the bundled prices or left off, while
spans, metrics and the other parts still work. A zero-code plugin must neither stop the app from
starting nor drop a whole configuration (hard budgets, `ledger_url: off`) for one typo.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ._attribution import Pseudonymizer
from ._config import Config, ConfigError, load_config, load_config_leniently
from ._faults import record_fault
from ._fork import new_lock_in_child
from ._metrics import call_metrics_for, drain_all
from ._version import __version__
from .pricing import PriceBook, PricingError

if TYPE_CHECKING:
    from .budgets import BudgetGuard, ThresholdEvent
    from .ledger import LedgerWriter

logger = logging.getLogger("genai_meter")

_T = TypeVar("_T")


def report_config_error(error: ConfigError, instead: str, cause: Exception | None = None) -> None:
    """Under the launcher: log a configuration error with what is used instead, and count it (the
    fault log keeps the traceback of a `cause` that was not a plain configuration mistake)."""
    logger.error("genai-meter: %s; %s; the rest of the configuration is in force", error, instead)
    record_fault("config", cause)


class Runtime:
    """Everything an instrumented call needs, built once from one `Config`.

    `strict` (configure()): a part that cannot be built raises ConfigError. Otherwise (the launcher)
    it is reported and replaced by its fallback, so the other parts are built all the same.
    `previous`: the runtime this one replaces, whose memory budget store it takes over (not kept).
    """

    def __init__(
        self,
        config: Config,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        strict: bool = True,
        previous: Runtime | None = None,
    ) -> None:
        self.config = config
        self._strict = strict
        self.prices: PriceBook = self._part(
            "pricing_file", lambda: PriceBook.load(config.pricing_file), PriceBook.load, "the bundled prices are used"
        )
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
        # The parts shared with the live runtime (the meter's instruments) are wired last, once
        # nothing can fail: a configure() that raises leaves the live runtime's metrics as they were.
        # The guard is built after the ledger because building it makes it the budget gauges' source.
        self.ledger: LedgerWriter | None = self._part("ledger_url", self._make_ledger, _none, "the ledger is off")
        try:
            self.guard: BudgetGuard | None = self._part(
                "budgets", lambda: self._make_guard(previous), _none, "budgets are off"
            )
        except ConfigError:
            if self.ledger is not None:
                self.ledger.close()
            raise
        writer = self.ledger
        self.metrics.ledger_counts = (
            (lambda: (writer.rows_written, writer.rows_spooled, writer.rows_dead_lettered))
            if writer is not None
            else None
        )
        self._metrics_server: Any = None

    def _part(self, key: str, build: Callable[[], _T], fallback: Callable[[], _T], instead: str) -> _T:
        """`build()`. When it fails: ConfigError naming `key` for configure() (chained to the cause,
        whose traceback stays), or, under the launcher, the fault reported and `fallback()`."""
        try:
            return build()
        except Exception as fault:
            wrapped, cause = _as_config_error(key, fault)
            if self._strict:
                raise wrapped from fault
            report_config_error(wrapped, instead, cause)
        return fallback()

    def _make_guard(self, previous: Runtime | None) -> BudgetGuard | None:
        config = self.config
        if not config.budgets:
            return None
        from .budgets import BudgetGuard, parse_budget_config

        budgets = parse_budget_config(config.budgets, config.source)
        # A memory store lives in this process only: a new one would count from zero, and a hard
        # budget could be spent again in the same period. It goes on from the previous guard's.
        store = None
        if budgets.store == "memory" and previous is not None and previous.guard is not None:
            store = previous.guard.hand_over_store()
        return BudgetGuard(
            budgets,
            meter=self.meter,
            label_cap=config.label_cap,
            max_series=config.max_series_per_metric,
            on_threshold=_threshold_callbacks.fire,
            pseudonymize=self.pseudonymize,
            store=store,
        )

    def _make_ledger(self) -> LedgerWriter | None:
        config = self.config
        if not config.ledger_enabled:
            return None
        from .ledger import LedgerWriter, default_ledger_url

        writer = LedgerWriter(
            config.ledger_url or default_ledger_url(), metadata_keys=config.ledger_metadata_keys or None
        )
        writer.before_flush = drain_all
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
        try:  # calls that ended before: their ledger rows go to this ledger, before it closes
            self.metrics.deferred.drain()
        except Exception as error:
            record_fault("runtime.close", error)
        for part in (self.ledger, self.guard):
            if part is not None:
                try:
                    part.close()
                except Exception as error:
                    record_fault("runtime.close", error)


def _none() -> None:
    return None


def _as_config_error(key: str, fault: Exception) -> tuple[ConfigError, Exception | None]:
    """A part's failure as a ConfigError, and the cause whose traceback is worth logging: none for a
    plain mistake in the configuration, whose message already names the file, field or URL."""
    from .budgets import BudgetPolicyError
    from .ledger import LedgerError

    if isinstance(fault, PricingError | BudgetPolicyError | LedgerError):
        return ConfigError(str(fault), key=key), None
    return ConfigError(f"{key}: {type(fault).__name__}: {fault}", key=key), fault


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
_overrides: dict[str, Any] | None = None  # the last configure()'s settings, kept for a rebuild
_providers: dict[str, Any] = {"tracer_provider": None, "meter_provider": None}


new_lock_in_child(__name__)  # (a child forked while another thread built or swapped the runtime)


def set_providers(tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
    """Use these providers (from `Instrumentor.instrument(...)`). A runtime already built is rebuilt
    on them at once with the same settings, the last `configure()`'s included, and takes over its
    memory budget counters: an app that configures first and instruments with its own providers
    after would otherwise lose its settings and let a hard budget be spent again."""
    with _lock:
        if (
            tracer_provider is _providers["tracer_provider"]
            and meter_provider is _providers["meter_provider"]
        ):
            return
        _providers["tracer_provider"] = tracer_provider
        _providers["meter_provider"] = meter_provider
        if _runtime is None:
            return
    try:
        _build(None, rebuild=True)
    except Exception as fault:  # (the settings built a runtime before: a file changed since, say)
        record_fault("runtime.rebuild", fault)
        logger.error("genai-meter: rebuilding on new providers failed (%s); the environment's settings are used", fault)
        reset_runtime()


def get_runtime() -> Runtime:
    """The live runtime, built from the environment on first use."""
    runtime = _runtime
    if runtime is not None:
        return runtime
    return _build(None)


def _build(overrides: dict[str, Any] | None, *, rebuild: bool = False) -> Runtime:
    """The runtime from `overrides` (configure()), else from the environment; `rebuild`: replace the
    live one with the same settings (`set_providers`)."""
    global _runtime, _overrides
    with _lock:
        if overrides is None and _runtime is not None and not rebuild:
            return _runtime
        settings = overrides if overrides is not None else _overrides if rebuild else None
        if settings is None:
            config, errors = load_config_leniently()
            for error in errors:
                report_config_error(error, error.fallback)
            runtime = Runtime(config, strict=False, previous=_runtime, **_providers)
        else:
            runtime = Runtime(load_config(**settings), previous=_runtime, **_providers)
        _overrides = settings
        old, _runtime = _runtime, runtime
    if old is not None:
        old.close()
    return runtime


def configure(**overrides: Any) -> Runtime:
    """Rebuild the runtime from the environment, the config file and these keys; raises ConfigError."""
    return _build(dict(overrides))


def reset_runtime() -> None:
    """Drop the runtime and the settings of `configure()` (tests); the next call builds a fresh one
    from the environment."""
    global _runtime, _overrides
    with _lock:
        old, _runtime = _runtime, None
        _overrides = None
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
