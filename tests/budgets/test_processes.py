"""Two processes x eight threads against one hard $1 budget, on Redis and on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from genai_meter.budgets import BudgetGuard, parse_budget_config

from .conftest import SHARED_REDIS

WORKER = Path(__file__).with_name("hammer_worker.py")
ESTIMATE = 0.012
THREADS = 8
CALLS = 20  # 2 x 8 x 20 calls of about $0.01: more than twice the budget


def _run_workers(section: dict[str, Any]) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    start_at = time.time() + 1.5
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                json.dumps(
                    {
                        "section": section,
                        "threads": THREADS,
                        "calls": CALLS,
                        "estimate": ESTIMATE,
                        "seed": seed,
                        "start_at": start_at,
                    }
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        results.append({**json.loads(out.strip().splitlines()[-1]), "stderr": err})
    return results


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_hard_budget_holds_across_processes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "redis":
        section: dict[str, Any] = {
            "store": SHARED_REDIS,
            "key_prefix": request.getfixturevalue("redis_prefix"),
        }
    else:
        section = {"store": f"sqlite://{tmp_path}/budgets.db"}
    section["policies"] = [{"name": "one-dollar", "scope": "tenant", "limit_usd": 1, "mode": "hard"}]
    # This test is about concurrency, not outages: on a loaded machine the default 0.25 s store
    # timeout can expire on SQLite's write lock and the guard would (rightly) fail open.
    section["store_timeout_s"] = 5
    results = _run_workers(section)

    assert [r["other_errors"] for r in results] == [[], []], [r["stderr"] for r in results]
    assert sum(r["blocked_with_send"] for r in results) == 0  # no blocked call got to send
    sent = sum(r["sent"] for r in results)
    blocked = sum(r["blocked"] for r in results)
    assert sent + blocked == 2 * THREADS * CALLS
    assert blocked > 0

    guard = BudgetGuard(parse_budget_config(section, "test"))
    [status] = guard.status(tenant="acme")
    guard.close()
    settled = round(status.spend_usd * 1e9)
    # Every sent call was settled, and nothing else was: the store's spend is exactly their sum.
    assert settled == sum(r["sent_nano"] for r in results)
    assert status.requests == sent
    assert status.reserved_usd == 0.0
    # Nothing is in flight any more, and no call cost more than its reservation: never over the limit.
    assert settled <= 1_000_000_000
    assert settled >= 1_000_000_000 - 2 * THREADS * round(ESTIMATE * 1e9)  # and it did get close
    fired = Counter(tuple(event) for r in results for event in r["events"])
    assert fired == {("one-dollar", 75.0): 1, ("one-dollar", 90.0): 1, ("one-dollar", 100.0): 1}
