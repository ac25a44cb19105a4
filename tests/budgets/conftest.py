"""Fixtures for the budget tests: an injectable clock, the machine's Redis, a throwaway Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from genai_meter.budgets import BudgetConfig, BudgetGuard, parse_budget_config

SHARED_REDIS = "redis://127.0.0.1:6379/0"


class Clock:
    """A settable clock: rollovers and time zones are tested without waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def set(self, now: datetime) -> None:
        self.now = now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 12, 10, 0, tzinfo=timezone.utc))  # a Wednesday


def missing_service(message: str) -> None:
    """A service the tests need is missing: a failure in CI, a skip on a developer's machine."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def redis_client(url: str) -> Any:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except Exception as error:
        missing_service(f"Redis at {url} is not reachable: {error}")
    return client


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of our own on the machine's shared Redis, deleted afterwards."""
    client = redis_client(SHARED_REDIS)
    prefix = f"genai_meter_test:{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> dict[str, Any]:
    """The `budgets:` keys that select each store; every behaviour test runs against all three."""
    if request.param == "memory":
        return {"store": "memory"}
    if request.param == "sqlite":
        return {"store": f"sqlite://{tmp_path}/budgets.db"}
    prefix = request.getfixturevalue("redis_prefix")
    return {"store": SHARED_REDIS, "key_prefix": prefix}


@pytest.fixture
def make_guard(store: dict[str, Any], clock: Clock) -> Iterator[Callable[..., BudgetGuard]]:
    guards: list[BudgetGuard] = []

    def make(policies: list[dict[str, Any]], **options: Any) -> BudgetGuard:
        section = {**store, "policies": policies, **options.pop("section", {})}
        guard = BudgetGuard(
            parse_budget_config(section, "test.yaml"), clock=options.pop("clock", clock), **options
        )
        guards.append(guard)
        return guard

    yield make
    for guard in guards:
        guard.close()




def config(policies: list[dict[str, Any]], **section: Any) -> BudgetConfig:
    return parse_budget_config({"policies": policies, **section}, "test.yaml")
