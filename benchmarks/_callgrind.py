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


def instructions_per_call(child: Sequence[str], calls: int) -> float:
    """Run `child` (a command whose measured `calls` run inside `counted()`) under callgrind.

    The same string hash seed for every child: with a random one, each process's dicts and sets
    probe differently and counts of the same code move by ~1 % (~50,000 instructions per OpenAI
    call, the size of the differences being measured); with a fixed one, by ~0.2 %. And the same
    addresses (`setarch --addr-no-randomize`, where there is `setarch`): objects hashed by address
    (types in caches, sets of objects) probe differently at other addresses, which moved the bare
    OpenAI stream by up to 50,000 instructions between runs of the same code (seen 2026-11-23)."""
    with tempfile.TemporaryDirectory() as folder:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/out", *child]
        if shutil.which("setarch"):
            command = ["setarch", platform.machine(), "--addr-no-randomize", *command]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    found = re.search(r"Collected : ([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind for {' '.join(child)}:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", "")) / calls
