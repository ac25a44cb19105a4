"""A child forked while another thread held one of genai-meter's locks must not hang.

A forked child has only the thread that forked; a lock held by another thread at that moment stays
held in the child for ever. Each test holds a lock from another thread (as a thread in the middle
of a metered call would), forks, and has the child make the operation that takes it. The parent
waits for the child with a bound and kills it past the bound: a child that hung fails the test.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import genai_meter
from genai_meter import _faults, _fork
from genai_meter._metrics import CallMetrics
from genai_meter._runtime import get_runtime
from genai_meter._usage import Usage
from genai_meter.budgets import BudgetGuard, PendingCall, parse_budget_config
from genai_meter.budgets._memory import MemoryStore
from genai_meter.budgets._store import StoreUnavailable
from genai_meter.budgets._types import Target
from genai_meter.exporter import _metered
from genai_meter.fake_provider import FakeProvider
from genai_meter.instrumentation.openai import OpenAIInstrumentor

from ..conftest import fake_provider_settings, instrumented

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")

_BOUND_S = 20.0  # a bound on a child that does not hang, not a timing assertion


@contextmanager
def held_by_another_thread(*locks: Any) -> Iterator[None]:
    """Each lock held by a thread of its own until the block ends."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        for lock in locks:
            lock.acquire()
        taken.set()
        release.wait()
        for lock in locks:
            lock.release()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def in_child(work: Callable[[], None]) -> str:
    """Fork; the child runs `work` and exits 0 (1 if it raised). What the child did, as text."""
    with warnings.catch_warnings():  # (Python 3.12+ warns about fork() with threads: that is the point)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + _BOUND_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "exited 0" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else f"failed ({status})"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.01)


def _guard(section: dict[str, Any]) -> BudgetGuard:
    policies = [{"name": "per-user", "scope": "user", "period": "day", "limit_usd": 100, "mode": "hard"}]
    return BudgetGuard(parse_budget_config({**section, "policies": policies}, "test.yaml"))


def _call(user: str, estimate: float = 0.01) -> PendingCall:
    return PendingCall("openai", "gpt-4o", "chat", estimate_usd=estimate, user=user)


def _metrics() -> CallMetrics:
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("test")
    return CallMetrics(meter, label_cap=10, user_labels=True, tenant_labels=True)


def test_memory_budget_store_locked_at_fork() -> None:
    guard = _guard({"store": "memory"})
    in_flight = guard.check_and_reserve(_call("u", 1.0))  # a call of the parent's, never settled in the child
    assert in_flight is not None

    def child() -> None:
        # the parent's calls in flight never settle here: their estimates are not reserved here
        assert [status.reserved_usd for status in guard.status(user="u")] == [0.0]
        reservation = guard.check_and_reserve(_call("u"))
        assert reservation is not None
        guard.settle(reservation, 0.02)
        assert [round(status.spend_usd, 9) for status in guard.status(user="u")] == [0.02]

    with held_by_another_thread(guard._store._lock):  # type: ignore[attr-defined]
        assert in_child(child) == "exited 0"
    assert [status.reserved_usd for status in guard.status(user="u")] == [1.0]
    guard.close()


def test_sqlite_budget_store_locked_at_fork(tmp_path: Path) -> None:
    guard = _guard({"store": f"sqlite://{tmp_path}/budgets.db"})
    guard.settle(guard.check_and_reserve(_call("u")) or pytest.fail("no reservation"), 0.01)  # connected
    store = guard._store
    parents = id(store._conn)  # type: ignore[attr-defined]

    def child() -> None:
        reservation = guard.check_and_reserve(_call("u"))
        assert reservation is not None
        guard.settle(reservation, 0.01)
        assert store._conn is not None and id(store._conn) != parents  # type: ignore[attr-defined]

    with held_by_another_thread(store._lock):  # type: ignore[attr-defined]
        assert in_child(child) == "exited 0"
    # the child's call went to the shared file; the parent's connection still works
    assert [round(status.spend_usd, 9) for status in guard.status(user="u")] == [0.02]
    guard.close()


class _RefusingSettles:
    """The guard's store, whose settles fail as a store outage would."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def settle(self, targets: Sequence[Target], keys: Sequence[str], *args: int) -> Any:
        raise StoreUnavailable("budget store: connection reset (test)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_budget_guard_locked_at_fork() -> None:
    guard = _guard({"store": "memory"})
    real = guard._store
    guard._store = _RefusingSettles(real)  # type: ignore[assignment]
    guard.settle(guard.check_and_reserve(_call("u")) or pytest.fail("no reservation"), 0.01)
    assert len(guard._unsettled) == 1  # kept for the store; the parent applies it

    def child() -> None:
        assert len(guard._unsettled) == 0  # the parent's, not applied a second time here
        reservation = guard.check_and_reserve(_call("new-user"))  # a new label: the guard's `_lock`
        assert reservation is not None
        guard.settle(reservation, 0.01)  # refused: kept under `_unsettled_lock`
        assert len(guard._unsettled) == 1

    with held_by_another_thread(guard._lock, guard._unsettled_lock):
        assert in_child(child) == "exited 0"
    assert len(guard._unsettled) == 1
    guard._store = real
    guard.close()


def test_metric_sums_and_label_caps_locked_at_fork() -> None:
    metrics = _metrics()
    attrs = metrics.histogram_attributes("chat", "openai", "m", "m", "h")

    def child() -> None:
        key = metrics.label_key("openai", "m", "chat", None, "new-tenant", "new-user")
        metrics.record_call(key, Usage(input_tokens=3, output_tokens=4), 0.5, "ok", attrs, 0.1, None)
        metrics.record_call(key, None, None, "unpriced", attrs, 0.1, "Error")
        assert metrics.requests.snapshot()[(*key, "ok")] == 1

    sums = (metrics.cost, metrics.tokens, metrics.requests, metrics.unpriced, metrics.estimated)
    assert {id(s.lock) for s in sums} == {id(metrics._lock)}  # one lock for all the sums
    with held_by_another_thread(metrics._lock, metrics._users._lock, metrics._tenants._lock):
        assert in_child(child) == "exited 0"


def test_fault_counts_locked_at_fork() -> None:
    _faults.reset_faults()

    def child() -> None:
        _faults.record_fault("test.fork")
        assert _faults.fault_counts() == {"test.fork": 1}

    with held_by_another_thread(_faults._lock):
        assert in_child(child) == "exited 0"
    _faults.reset_faults()


def test_call_span_ids_locked_at_fork() -> None:
    span = TracerProvider().get_tracer("test").start_span("call")

    def child() -> None:
        _metered.remember_call_span(span)
        assert _metered.is_call_span(span.get_span_context().span_id)

    with held_by_another_thread(_metered._lock):
        assert in_child(child) == "exited 0"
    span.end()


def test_runtime_lock_held_at_fork() -> None:
    """A child forked while another thread was building (or swapping) the runtime."""
    from genai_meter import _runtime

    def child() -> None:
        _runtime.reset_runtime()
        assert _runtime.get_runtime() is not None

    with held_by_another_thread(_runtime._lock):
        assert in_child(child) == "exited 0"


def test_background_responses_locked_at_fork() -> None:
    from genai_meter.instrumentation.openai._background import BACKGROUND

    def child() -> None:
        assert len(BACKGROUND) == 0 and BACKGROUND.take("resp_x") is None  # (the parent's calls stay its own)

    with held_by_another_thread(BACKGROUND._lock):
        assert in_child(child) == "exited 0"


def test_a_metered_call_in_a_child_forked_while_every_lock_was_held(
    fake_provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole call (budget check and settle, metric sums, label caps) in the child, while a
    thread of the parent holds every lock a call takes."""
    config = tmp_path / "genai-meter.yaml"
    config.write_text(
        "budgets:\n  store: memory\n  policies:\n"
        "    - {name: per-user, scope: user, period: day, limit_usd: 100, mode: hard}\n"
    )
    monkeypatch.setenv("GENAI_METER_CONFIG", str(config))
    client = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk-test", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    with instrumented(OpenAIInstrumentor(), **fake_provider_settings(fake_provider)) as telemetry:
        with genai_meter.attribute(user="parent"):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=5)
        runtime = get_runtime()
        guard, metrics = runtime.guard, runtime.metrics
        assert guard is not None

        def child() -> None:
            with genai_meter.attribute(user="child", tenant="t"):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=5)
            assert [status.requests for status in guard.status(user="child")] == [1]

        locks = [
            guard._lock,
            guard._unsettled_lock,
            guard._store._lock,  # type: ignore[attr-defined]
            metrics._lock,  # (every sum's)
            metrics._users._lock,
            metrics._tenants._lock,
            _faults._lock,
            _metered._lock,
        ]
        with held_by_another_thread(*locks):
            assert in_child(child) == "exited 0"
        assert telemetry.total("genai_meter.requests") == 1


def _registered() -> dict[int, Any]:
    """A copy of the fork registry. An object freed meanwhile (a garbage collection that the copying
    itself set off) takes its entry out while the dict is read: read it again then."""
    while True:
        try:
            return dict(_fork._entries)
        except RuntimeError:
            continue


def test_the_reset_hooks_hold_no_object_and_calls_add_none() -> None:
    store = MemoryStore(time.time)
    gone = weakref.ref(store)
    its = {token for token, (ref, _reset) in _registered().items() if ref() is store}
    assert len(its) == 1
    del store
    gc.collect()
    assert gone() is None
    assert not its & set(_registered())

    metrics = _metrics()
    attrs = metrics.histogram_attributes("chat", "openai", "m", "m", "h")
    before = set(_registered())
    for n in range(50):
        key = metrics.label_key("openai", "m", "chat", None, "t", f"u{n}")
        metrics.record_call(key, Usage(input_tokens=1, output_tokens=1), 0.1, "ok", attrs, 0.1, None)
    assert not set(_registered()) - before
