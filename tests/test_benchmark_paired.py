"""`benchmarks/bench_overhead.py --paired` switches genai-meter's metering off for its bare blocks by
replacing the suppression check the metered call reads: a renamed check would leave the bare blocks
metered (or the run broken) with nothing else noticing. A tiny run, its figures not looked at."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_overhead.py"


def test_the_paired_run_switches_metering_off_for_its_bare_blocks() -> None:
    from genai_meter.instrumentation import _metering

    assert callable(_metering._suppressed)  # what the benchmark replaces
    done = subprocess.run(
        [sys.executable, str(BENCH), "--json", "--paired", "--pairs", "2", "--calls", "2", "--only", "openai"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(rows) == {"openai chat", "openai chat, 20-chunk stream"}
    assert all(len(row["call_path"]) == 3 and row["bare_us"] > 0 for row in rows.values())
