"""A Redis of our own, stopped mid-run: fail-open and fail-closed behave as configured.

Only `BudgetExceeded` may leave the guard; everything else is counted and logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from genai_meter import names
from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall, parse_budget_config

from ..conftest import ThrowawayRedis
from .conftest import Clock

POLICIES = [
    {"name": "hard", "scope": "tenant", "limit_usd": 100, "mode": "hard"},
    {"name": "soft", "scope": "user", "limit_usd": 100, "mode": "soft"},
]


def _guard(server: ThrowawayRedis, clock: Clock, on_error: str, reader: InMemoryMetricReader) -> BudgetGuard:
    section = {"store": server.url, "on_store_error": on_error, "policies": POLICIES, "store_timeout_s": 0.2}
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    return BudgetGuard(parse_budget_config(section, "test"), clock=clock, meter=meter)


def _store_errors(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    counts: dict[str, int] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == names.BUDGET_STORE_ERRORS.otel_name:
                    for point in metric.data.data_points:
                        counts[str(point.attributes[names.LABEL_OUTCOME])] = int(point.value)
    return counts


def call(**who: str) -> PendingCall:
    return PendingCall("openai", "gpt-4o", "chat", estimate_usd=0.01, **who)


def test_fail_open(throwaway_redis: ThrowawayRedis, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    guard = _guard(throwaway_redis, clock, "open", reader)
    held = guard.check_and_reserve(call(tenant="acme", user="u1"))
    assert held is not None
    throwaway_redis.stop()
    with caplog.at_level(logging.WARNING, logger="genai_meter.budgets"):
        for _ in range(5):
            # sent, holding no reservation; settled at once (within the retry pause: kept, not tried)
            unheld = guard.check_and_reserve(call(tenant="acme", user="u1"))
            assert unheld is not None and not unheld.held
            assert guard.settle(unheld, 0.002) == []
            clock.advance(seconds=2)  # past the retry pause: each call tries the store again
        assert guard.settle(held, 0.01) == []
        statuses = guard.status(tenant="acme")
    assert [s.budget for s in statuses] == ["hard"]
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1  # logged once
    assert _store_errors(reader) == {"open": 7}  # five checks, one settle, one status

    throwaway_redis.start()  # same port: the guard finds it again
    clock.advance(seconds=2)
    reservation = guard.check_and_reserve(call(tenant="acme", user="u1"))
    assert reservation is not None
    guard.settle(reservation, 0.01)
    [status] = guard.status(tenant="acme")
    # A fresh server: the last call, and the settles kept while the server was down (the held call's
    # and the five calls' sent unreserved), applied by the next call that reached it. The held
    # call's reservation went with the old server: its request is counted again with its cost.
    assert (round(status.spend_usd, 9), status.reserved_usd, status.requests) == (0.03, 0.0, 7)
    guard.close()


def test_fail_closed(throwaway_redis: ThrowawayRedis, clock: Clock) -> None:
    reader = InMemoryMetricReader()
    guard = _guard(throwaway_redis, clock, "closed", reader)
    assert guard.check_and_reserve(call(tenant="acme")) is not None
    throwaway_redis.stop()
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(tenant="acme"))
    assert (caught.value.budget, caught.value.scope_value, caught.value.kind) == (
        "hard",
        "acme",
        "store_unavailable",
    )
    assert "unreachable" in str(caught.value.reason)
    with pytest.raises(BudgetExceeded):  # within the retry pause: no connection attempt, same answer
        guard.check_and_reserve(call(tenant="acme"))
    # A soft budget never blocks, even when its spend cannot be checked: sent, holding nothing.
    unheld = guard.check_and_reserve(call(user="u1"))
    assert unheld is not None and not unheld.held
    assert _store_errors(reader) == {"closed": 2, "open": 1}
    guard.close()


@pytest.mark.parametrize("on_error", ["open", "closed"])
def test_redis_stopped_while_threads_call(throwaway_redis: ThrowawayRedis, on_error: str) -> None:
    section: dict[str, Any] = {
        "store": throwaway_redis.url,
        "on_store_error": on_error,
        "policies": POLICIES,
        "store_timeout_s": 0.2,
    }
    guard = BudgetGuard(parse_budget_config(section, "test"))
    outcomes: dict[str, int] = {"sent": 0, "unreserved": 0, "blocked": 0}
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                reservation = guard.check_and_reserve(call(tenant="acme", user="u1"))
                assert reservation is not None
                kind = "sent" if reservation.held else "unreserved"
                guard.settle(reservation, 0.001)
            except BudgetExceeded as exceeded:
                assert exceeded.kind == "store_unavailable"
                kind = "blocked"
            except BaseException as error:
                with lock:
                    unexpected.append(error)
                return
            with lock:
                outcomes[kind] += 1
            time.sleep(0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    throwaway_redis.stop()
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    guard.close()
    assert unexpected == []
    assert outcomes["sent"] > 0
    if on_error == "open":
        assert outcomes["unreserved"] > 0 and outcomes["blocked"] == 0
    else:
        assert outcomes["blocked"] > 0 and outcomes["unreserved"] == 0
