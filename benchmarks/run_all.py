"""Runs every benchmark in turn and prints their figures (copy them into docs/benchmarks.md).

    .venv/bin/python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    print(f"# machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    runs = [
        ["bench_overhead.py", *(["--calls", "100", "--rounds", "3"] if args.quick else [])],
        *(
            [["bench_overhead.py", "--instructions", *(["--calls", "20"] if args.quick else [])]]
            if shutil.which("valgrind") and shutil.which("callgrind_control")
            else []
        ),
        ["bench_pricing.py"],
        ["bench_budgets.py"],
        ["bench_ledger.py", *(["--rows", "100000", "--write-rows", "20000"] if args.quick else [])],
        ["bench_soak.py", *(["--calls", "50000", "--users", "10000"] if args.quick else [])],
    ]
    failed = 0
    for script, *script_args in runs:
        path = HERE / script
        if not path.exists():
            continue
        print(f"\n## {script} {' '.join(script_args)}", flush=True)
        failed += subprocess.call([sys.executable, str(path), *script_args]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
