"""Hot-path cost of the budget guard: check_and_reserve + settle per call.

    PYTHONPATH=src python benchmarks/bench_budgets.py [--redis redis://127.0.0.1:6379/0] [--calls N]

Memory store: microseconds per call (best of 5 runs), target <= 10 us. SQLite store: per call, one
transaction each way. Redis store: p50 / p99 of check and of settle, next to a PING (one round
trip), and the number of network round trips per operation counted at the socket.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from typing import Any

from genai_meter.budgets import BudgetGuard, PendingCall, parse_budget_config

RUNS = 5

POLICIES = [
    {"name": "global", "limit_usd": 1e9, "mode": "hard"},
    {"name": "per-tenant", "scope": "tenant", "limit_usd": 1e9, "mode": "hard", "period": "day"},
]


def _guard(store: str, policies: list[dict[str, Any]], **extra: Any) -> BudgetGuard:
    return BudgetGuard(parse_budget_config({"store": store, "policies": policies, **extra}, "bench"))


def per_call_us(guard: BudgetGuard, call: PendingCall, calls: int) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(calls):
            reservation = guard.check_and_reserve(call)
            if reservation is not None:
                guard.settle(reservation, 0.009, 120)
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def bench_memory(calls: int) -> None:
    print(f"memory store, check_and_reserve + settle, best of {RUNS} x {calls} calls:")
    cases = [
        ("no budget applies (fast path)", POLICIES[1:], PendingCall("openai", "gpt-4o", "chat", user="u1")),
        ("1 hard budget", POLICIES[:1], PendingCall("openai", "gpt-4o", "chat", estimate_usd=0.01)),
        (
            "2 hard budgets",
            POLICIES,
            PendingCall("openai", "gpt-4o", "chat", tenant="acme", estimate_usd=0.01),
        ),
        (
            "2 budgets, estimate from like calls",
            POLICIES,
            PendingCall("openai", "gpt-4o", "chat", tenant="acme"),
        ),
    ]
    for label, policies, call in cases:
        figure = per_call_us(_guard("memory", policies), call, calls)
        print(f"  {label:<40} {figure:6.2f} us/call   (target <= 10 us)")


def bench_sqlite(calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        guard = _guard(f"sqlite://{folder}/budgets.db", POLICIES)
        call = PendingCall("openai", "gpt-4o", "chat", tenant="acme", estimate_usd=0.01)
        figure = per_call_us(guard, call, max(200, calls // 100))
        guard.close()
    print(f"sqlite store, 2 hard budgets: {figure:8.1f} us/call (check + settle, one transaction each)")


class _RoundTrips:
    """Counts packed commands written to Redis sockets: one per network round trip."""

    def __init__(self) -> None:
        import redis.connection

        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(connection: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(connection, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]


def _percentiles(samples: list[float]) -> str:
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"p50 {p50 * 1e6:7.1f} us   p99 {p99 * 1e6:7.1f} us"


def bench_redis(url: str, calls: int) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        print(f"redis store: skipped ({url} unreachable: {error})")
        return
    prefix = f"genai_meter_bench:{uuid.uuid4().hex}"
    guard = _guard(url, POLICIES, key_prefix=prefix, block_refresh_s=3600)
    trips = _RoundTrips()
    call = PendingCall("openai", "gpt-4o", "chat", tenant="acme", estimate_usd=0.01)
    n = max(1000, calls // 20)
    for _ in range(200):  # warm up: connection, script load
        reservation = guard.check_and_reserve(call)
        assert reservation is not None
        guard.settle(reservation, 0.009, 120)
    pings: list[float] = []
    checks: list[float] = []
    settles: list[float] = []
    check_trips = settle_trips = 0
    for _ in range(n):
        start = time.perf_counter()
        client.ping()
        pings.append(time.perf_counter() - start)
        before = trips.count
        start = time.perf_counter()
        reservation = guard.check_and_reserve(call)
        checks.append(time.perf_counter() - start)
        check_trips += trips.count - before
        assert reservation is not None
        before = trips.count
        start = time.perf_counter()
        guard.settle(reservation, 0.009, 120)
        settles.append(time.perf_counter() - start)
        settle_trips += trips.count - before
    guard.close()
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    print(f"redis store ({url}), 2 hard budgets, {n} calls:")
    print(f"  PING (one round trip)  {_percentiles(pings)}")
    print(f"  check_and_reserve      {_percentiles(checks)}   round trips/call {check_trips / n:.2f}")
    print(f"  settle                 {_percentiles(settles)}   round trips/call {settle_trips / n:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    bench_memory(args.calls)
    bench_sqlite(args.calls)
    bench_redis(args.redis, args.calls)


if __name__ == "__main__":
    main()
