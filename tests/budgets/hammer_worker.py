"""One worker process of the concurrency test: N threads call the guard as the instrumentation would.

Run as a script (`python hammer_worker.py JSON`); prints one JSON line with what it saw. A call
counts as sent ("would-send": the HTTP request would go out) only after check_and_reserve returned.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from typing import Any

from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall, parse_budget_config

NANO = 1_000_000_000


def main(options: dict[str, Any]) -> dict[str, Any]:
    guard = BudgetGuard(parse_budget_config(options["section"], "hammer"))
    lock = threading.Lock()
    seen: dict[str, Any] = {
        "sent": 0,
        "blocked": 0,
        "sent_nano": 0,
        "events": [],
        "blocked_with_send": 0,
        "other_errors": [],
    }

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(options["calls"]):
            cost_nano = rng.randint(8_000_000, 12_000_000)  # about $0.01, never above the estimate
            sent = False
            try:
                reservation = guard.check_and_reserve(
                    PendingCall(
                        "openai",
                        "gpt-4o",
                        "chat",
                        user=f"u{seed % 3}",
                        tenant="acme",
                        estimate_usd=options["estimate"],
                    )
                )
                sent = True  # here the provider's HTTP request would go out
                assert reservation is not None, "no reservation: the guard failed open (see stderr)"
                events = guard.settle(reservation, cost_nano / NANO, tokens=100)
                with lock:
                    seen["sent"] += 1
                    seen["sent_nano"] += cost_nano
                    seen["events"] += [[e.budget, e.threshold_percent] for e in events]
            except BudgetExceeded as exceeded:
                with lock:
                    seen["blocked"] += 1
                    seen["blocked_with_send"] += int(sent)
                    seen["events"] += [[e.budget, e.threshold_percent] for e in exceeded.events]
            except Exception as error:  # nothing else may reach the app
                with lock:
                    seen["other_errors"].append(repr(error))

    # Both processes start together, so their calls really overlap.
    time.sleep(max(0.0, options["start_at"] - time.time()))
    threads = [
        threading.Thread(target=work, args=(options["seed"] * 100 + i,)) for i in range(options["threads"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    guard.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
