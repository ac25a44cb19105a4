"""`genai-meter dashboards`: regenerate the Grafana dashboards, alert rules and rule tests, or check them.

The committed files are generated, never hand-edited; `--check` is what CI runs to catch a rename
in `genai_meter.names` that was not followed by a regeneration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dashboards",
        help="write the Grafana dashboards and Prometheus rules (or check they are up to date)",
        description="Generate dashboards/json/*.json, dashboards/rules/genai-meter.rules.yml and its "
        "promtool unit tests from the metric names genai-meter emits.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("dashboards"),
        help="directory to write into (default: ./dashboards)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any file under --out differs from what would be generated",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genai_meter import monitoring

    out: Path = args.out
    try:
        if args.check:
            stale = monitoring.check(out)
            if stale:
                for rel in stale:
                    print(f"stale or missing: {out / rel}", file=sys.stderr)
                print("run `genai-meter dashboards` to regenerate", file=sys.stderr)
                return 1
            print(f"{out}: up to date")
            return 0
        for path in monitoring.write(out):
            print(f"wrote {path}")
        return 0
    except monitoring.GrafanalibMissing as exc:
        print(f"genai-meter dashboards: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"genai-meter dashboards: cannot write to {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
