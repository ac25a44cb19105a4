"""Instruction counts of a benchmark's measured calls, with valgrind's callgrind.

The parent runs a child command under callgrind with instrumentation off; the child warms up, then
wraps its measured calls in `counted()`, which switches instrumentation on and off around them. The
count is the same from run to run whatever else the machine does, where CPU times on a shared
virtual machine move by tens of percent.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def drain_at_collection() -> None:
    """Leave genai-meter's histogram records to the metric collection inside the count, as the
    span processor's exports are left to its flush: under callgrind a second of wall time holds
    ~50 times fewer calls than it does natively, so a thread that wakes on a timer (0.5 s) would be
    counted ~50 times as often per call as it runs, and its wake-ups vary from run to run (seen:
    +25,000 to +65,000 instructions per OpenAI call). The records are recorded all the same, by the
    collection on the calling thread inside the count, in one batch: a batch's own fixed cost (a few
    thousand instructions) is shared by all the counted calls, where a real drain every 0.5 s
    shares it among the calls of that half second."""
    try:
        from genai_meter._metrics import _DeferredRecords
    except ImportError:  # a peer's environment without genai-meter
        return
    _DeferredRecords._INTERVAL_S = 24 * 3600.0


@contextmanager
def counted() -> Iterator[None]:
    """In the child: count the instructions of what runs inside (GC paused)."""
    gc.collect()
    gc.disable()
    switch = ["callgrind_control", "--instr"]
    subprocess.run([*switch, "on", str(os.getpid())], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([*switch, "off", str(os.getpid())], check=True, capture_output=True)
        gc.enable()


# Environment paddings that shift where the child's objects land (see `instructions_per_call`).
# Six: with three, the bare SDK's own count moving by up to ~39,000 between two layouts (seen
# 2026-11-24) left the median's ratio to a peer anywhere in ~0.47-0.51 for the same code.
LAYOUT_PADS = (0, 100, 300, 700, 1500, 2500)


def instructions_per_call(child: Sequence[str], calls: int, layout_pad: int = 0) -> float:
    """`instruction_counts(...)[0]`: the instructions per call."""
    return instruction_counts(child, calls, layout_pad)[0]


def instruction_counts(child: Sequence[str], calls: int, layout_pad: int = 0) -> tuple[float, float]:
    """Run `child` (a command whose measured `calls` run inside `counted()`) under callgrind.

    The same string hash seed for every child: with a random one, each process's dicts and sets
    probe differently and counts of the same code move by ~1 % (~50,000 instructions per OpenAI
    call, the size of the differences being measured); with a fixed one, by ~0.2 %. And the same
    addresses (`setarch --addr-no-randomize`, where there is `setarch`): objects hashed by address
    (types in caches, sets of objects) probe differently at other addresses, which moved the bare
    OpenAI stream by up to 50,000 instructions between runs of the same code (seen 2026-11-23).

    What is left moves with the address layout all the same: CPython 3.11's type attribute cache
    is indexed by the type's version tag and the *address* of the attribute's name, so the objects
    a process happens to make before the count decide which lookups collide (seen 2026-11-24: the
    same child with one more environment variable counted 31,000 to 73,000 more per OpenAI stream,
    all of it in `find_name_in_mro` and the dict lookups under it; any change to genai-meter's
    code moves the bare SDK's count too, since every child imports it). So a figure is the median
    over a few layouts, `layout_pad` bytes of environment each (`LAYOUT_PADS`), not one run.

    Returned with the count per call: the same without the type attribute cache's misses (the
    instructions inside `find_name_in_mro`, which runs only on a miss), a figure that stays within a
    few thousand instructions from layout to layout where the whole count moves by tens of
    thousands: for comparing two codes, beside the medians that are the verdict.

    And no timer in the count: the OTel batch span processor wakes every 5 s to export, which under
    callgrind (~50 times slower than natively) falls inside the count a varying number of times
    (its wake-ups moved the bare SDK's count by ~29,000 per stream); natively, 60 calls fit in far
    less than one interval. Its delay is set beyond the run, so every span is exported by the
    flush inside the count, as genai-meter's deferred endings are (`drain_at_collection`)."""
    with tempfile.TemporaryDirectory() as folder:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/out", *child]
        if shutil.which("setarch"):
            command = ["setarch", platform.machine(), "--addr-no-randomize", *command]
        env = {
            **os.environ,
            "PYTHONHASHSEED": "0",
            "OTEL_BSP_SCHEDULE_DELAY": str(24 * 3600 * 1000),
            "BENCH_LAYOUT_PAD": "x" * layout_pad,
        }
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        found = re.search(r"Collected : ([\d,]+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from callgrind for {' '.join(child)}:\n{done.stderr[-2000:]}")
        total = int(found.group(1).replace(",", ""))
        misses = _type_cache_misses(f"{folder}/out")
    return total / calls, (total - misses) / calls


def _type_cache_misses(out_file: str) -> int:
    """The instructions spent in CPython's `find_name_in_mro` (inclusive), by callgrind's record."""
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out_file],
        capture_output=True, text=True, check=True,
    ).stdout
    return sum(
        int(found.group(1).replace(",", ""))
        for found in re.finditer(r"^\s*([\d,]+) \([ \d.]+%\)\s+\S*:find_name_in_mro(?:'\d+)? ", annotated, re.M)
    )
