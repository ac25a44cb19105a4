"""Ledger request ids (the idempotency key of calls with no response id): unique within a process
and across forked workers, without a system call per call."""

from __future__ import annotations

import multiprocessing
import re

from genai_meter._record import new_request_id


def _ids_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put([new_request_id() for _ in range(3)])


def test_ids_are_32_hex_digits_and_unique_in_a_process() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


def test_forked_workers_never_repeat_the_parents_ids() -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_ids_in_child, args=(queue,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    children = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    parent = [new_request_id() for _ in range(3)]
    every = parent + children[0] + children[1]
    assert len(set(every)) == 9
    prefixes = {request_id[:16] for request_id in every}
    assert len(prefixes) == 3  # each process its own prefix
