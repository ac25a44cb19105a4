"""Ledger benchmark: write throughput, a grouped report over a million rows, and a flat-memory export.

    python benchmarks/bench_ledger.py [--rows 1000000] [--ledger URL] [--keep]

Prints figures for docs/benchmarks.md. Targets: at least 20,000 rows/s written through LedgerWriter
into SQLite; a report grouped by user over one million rows in under a second; an export of one
million rows whose peak RSS stays flat (measured in a child process, against the same child that only
opens the ledger).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genai_meter._record import CallRecord
from genai_meter.ledger import LedgerWriter, open_ledger
from genai_meter.ledger._backend import connect
from genai_meter.ledger._rows import RowMaker

DAY0 = 1_767_225_600.0  # 2026-01-01


def records(n: int, start: int = 0) -> list[CallRecord]:
    """Calls over 30 days from 500 users in 20 tenants, 5 features, 6 models."""
    out = []
    for i in range(start, start + n):
        user = (i * 7919) % 500
        out.append(
            CallRecord(
                time=DAY0 + (i % 2_592_000) + (i // 2_592_000) * 0.5,
                provider="openai" if i % 3 else "anthropic",
                operation="chat",
                request_model=f"model-{i % 6}",
                response_model=f"model-{i % 6}-2025",
                response_id=f"resp-{i}",
                request_id=f"req-{i}",
                user=f"user-{user}",
                tenant=f"tenant-{user % 20}",
                feature=f"feature-{i % 5}",
                input_tokens=1000 + i % 100,
                output_tokens=200 + i % 50,
                cache_read_tokens=i % 300,
                cost_input_usd=0.0025,
                cost_output_usd=0.002,
                cost_usd=0.0045,
                cost_source="pricing",
                pricing_version="2026-01-01",
                latency_s=0.5,
                trace_id="0af7651916cd43dd8448eb211c80319c",
                span_id="b7ad6b7169203331",
                metadata={"ticket": f"T-{i % 1000}"},
            )
        )
    return out


def bench_writer(url: str, n: int, spool: Path) -> None:
    batch = records(n, start=10_000_000)
    writer = LedgerWriter(url, spool_path=spool, batch_size=1000)
    t0 = time.perf_counter()
    for record in batch:
        writer.submit(record)
    t1 = time.perf_counter()
    writer.flush(300)
    t2 = time.perf_counter()
    writer.close()
    print(f"submit (hot path):            {(t1 - t0) / n * 1e6:8.2f} µs per call ({n:,} calls, writer running)")
    print(f"write through LedgerWriter:   {n / (t2 - t0):10,.0f} rows/s ({n:,} rows, batches of 1000)")
    print(f"  counters: rows_written={writer.rows_written:,} rows_spooled={writer.rows_spooled} faults={writer.faults}")


def fill(url: str, total: int) -> None:
    db = connect(url, timeout_s=60)
    maker = RowMaker()
    have = db.fetch_all("SELECT count(*) FROM genai_meter_calls")[0][0]
    t0 = time.perf_counter()
    step = 20_000
    for start in range(0, total, step):
        db.insert_rows([maker.row(r) for r in records(min(step, total - start), start)])
    db.close()
    print(f"fill to {total:,} rows (bulk insert_rows, {have:,} before): {time.perf_counter() - t0:.1f} s")


def bench_report(url: str) -> None:
    with open_ledger(url) as ledger:
        count = ledger.count()
        for label, kwargs in [
            ("report by user (all time)", {"group_by": ["user"]}),
            ("report by user, top 10", {"group_by": ["user"], "top": 10}),
            ("report by user, since 2026-01-15", {"group_by": ["user"], "since": "2026-01-15"}),
            ("report by tenant", {"group_by": ["tenant"]}),
            ("report by model per day", {"group_by": ["model"], "period": "day"}),
        ]:
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                rows = ledger.report(**kwargs)  # type: ignore[arg-type]
                best = min(best, time.perf_counter() - t0)
            print(f"{label + ':':34} {best * 1000:8.1f} ms over {count:,} rows ({len(rows)} groups, best of 3)")
        t0 = time.perf_counter()
        ledger.totals()
        print(f"{'totals (today, month, all time):':34} {(time.perf_counter() - t0) * 1000:8.1f} ms")


def _child_rss(args: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - t0
    return elapsed, int(proc.stdout.strip().splitlines()[-1])


def bench_export(url: str) -> None:
    _, base_kb = _child_rss(["--child", "open", url])
    tail_s, tail_kb = _child_rss(["--child", "csv-tail", url])
    print(
        f"export csv, last 3 days (~10%):    {tail_s:6.1f} s, peak RSS {tail_kb / 1024:6.1f} MiB"
        " (flat memory: the full export below should peak at the same figure)"
    )
    for fmt in ("csv", "jsonl"):
        seconds, peak_kb = _child_rss(["--child", fmt, url])
        print(
            f"export {fmt:5} to /dev/null:       {seconds:6.1f} s, peak RSS {peak_kb / 1024:6.1f} MiB"
            f" (child that only opens the ledger: {base_kb / 1024:.1f} MiB)"
        )


def child(mode: str, url: str) -> None:
    from genai_meter.ledger._render import stream_rows
    from genai_meter.ledger._rows import COLUMNS

    with open_ledger(url) as ledger:
        if mode != "open":
            since = "2026-01-28" if mode == "csv-tail" else None
            with open(os.devnull, "w") as out:
                stream_rows(ledger.export(since=since), COLUMNS, mode.split("-")[0], out)
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the parent's peak.
    status = Path("/proc/self/status").read_text()
    print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--write-rows", type=int, default=200_000)
    parser.add_argument("--ledger", help="ledger URL (default a new SQLite file in a temp dir)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    url = args.ledger or f"sqlite:///{tmp / 'ledger.sqlite3'}"
    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, ledger {url}")
    bench_writer(url, args.write_rows, tmp / "spool.jsonl")
    fill(url, args.rows)
    bench_report(url)
    bench_export(url)


if __name__ == "__main__":
    main()
