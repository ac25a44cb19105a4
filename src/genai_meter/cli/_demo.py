"""`genai-meter demo`: the whole product, offline, in one command.

It starts the fake provider, writes a configuration (budgets, ledger, the fake provider's host
treated as OpenAI's), runs `genai_meter.demo.app` under the real `opentelemetry-instrument` launcher
with `/metrics` served on 127.0.0.1, scrapes it once, and prints the ledger's cost per user and per
feature. With `--prometheus` it also starts Debian's Prometheus with the shipped alert rules,
scraping the app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .. import names
from ._fake_provider import port_type

_CONFIG = """\
# Written by `genai-meter demo`.
ledger_url: "sqlite:///{ledger}"
provider_hosts: {{"127.0.0.1": openai}}
inject_stream_usage: {{"127.0.0.1": true}}
budgets:
  store: memory
  policies:
    - name: per-user-daily
      scope: [user]
      match: {{user: "*"}}
      period: day
      limit_usd: 0.02
      mode: soft
    - name: globex-monthly
      scope: [tenant]
      match: {{tenant: globex}}
      period: month
      limit_usd: 0.08
      mode: hard
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the offline demo: fake provider, an instrumented app, budgets, a report and /metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="times the app repeats its calls (default 3)")
    parser.add_argument("--workdir", default=".demo", help="folder for the config and ledger (default .demo)")
    parser.add_argument(
        "--metrics-port", type=port_type("--metrics-port"), default=0, help="port of /metrics (default: a free one)"
    )
    parser.add_argument(
        "--serve-seconds",
        type=float,
        default=3.0,
        help="keep /metrics up this long after the calls (default 3)",
    )
    parser.add_argument(
        "--prometheus", action="store_true", help="also run Prometheus on 127.0.0.1 with the alert rules"
    )
    parser.set_defaults(func=_run)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _scrape(port: int, timeout_s: float, app: subprocess.Popen[bytes]) -> str:
    """/metrics, or "" once `timeout_s` passed or the app (which serves it) has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline or app.poll() is not None:
                return ""
            time.sleep(0.2)


def _run(args: argparse.Namespace) -> int:
    from ..fake_provider import FakeProvider
    from . import main as cli_main

    if args.rounds < 1:
        print("genai-meter demo: --rounds must be at least 1", file=sys.stderr)
        return 2
    launcher = shutil.which("opentelemetry-instrument") or str(
        Path(sys.executable).with_name("opentelemetry-instrument")
    )
    if not Path(launcher).exists():
        print(
            "genai-meter demo: opentelemetry-instrument not found (pip install opentelemetry-distro)",
            file=sys.stderr,
        )
        return 2
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.sqlite3"
    for leftover in workdir.glob("ledger.sqlite3*"):
        leftover.unlink()
    config_path = workdir / "config.yaml"
    config_path.write_text(_CONFIG.format(ledger=ledger))
    metrics_port = args.metrics_port or _free_port()
    if _port_taken(metrics_port):  # (the app would run unmetered: the launcher's exporter cannot bind)
        print(f"genai-meter demo: --metrics-port: 127.0.0.1:{metrics_port} is in use", file=sys.stderr)
        return 2
    serve_seconds = max(args.serve_seconds, 3.0)

    with FakeProvider() as provider:
        print(f"fake provider: {provider.openai_base_url}")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_METER_")},
            "OTEL_SERVICE_NAME": "genai-meter-demo",
            "OTEL_TRACES_EXPORTER": os.environ.get("OTEL_TRACES_EXPORTER", "none"),
            "OTEL_METRICS_EXPORTER": "prometheus",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
            "OPENAI_BASE_URL": provider.openai_base_url,
            "OPENAI_API_KEY": "sk-demo-not-a-real-key",
            "GENAI_METER_CONFIG": str(config_path),
            # Other GenAI instrumentations, if installed, would trace the same calls again.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic",
            "DEMO_ROUNDS": str(args.rounds),
            "DEMO_SERVE_SECONDS": str(serve_seconds if not args.prometheus else 3600),
        }
        print(
            f"app: opentelemetry-instrument python -m genai_meter.demo.app (metrics on 127.0.0.1:{metrics_port})"
        )
        app = subprocess.Popen(
            [launcher, sys.executable, "-m", "genai_meter.demo.app"], env=env, stdout=None, stderr=None
        )
        prometheus = None
        metrics_text = ""
        try:
            metrics_text = _scrape(metrics_port, 60, app)
            # Wait for the app's calls to finish, visible as a stable request count.
            last = -1.0
            for _ in range(100):
                if app.poll() is not None:
                    break
                metrics_text = _scrape(metrics_port, 5, app) or metrics_text
                count = _sum(metrics_text, names.REQUESTS.prometheus_name)
                if count == last and count > 0:
                    break
                last = count
                time.sleep(0.3)
            print(f"\n/metrics on http://127.0.0.1:{metrics_port}/metrics, e.g.:")
            for line in metrics_text.splitlines():
                if line.startswith(names.COST.prometheus_name + "{") and 'user="alice"' in line:
                    print("  " + line)
            if args.prometheus:
                prometheus = _start_prometheus(metrics_port, workdir)
            app.wait(timeout=3600 if args.prometheus else serve_seconds + 60)
        except KeyboardInterrupt:
            pass
        finally:
            if app.poll() is None:
                app.terminate()
                app.wait(timeout=10)
            if prometheus is not None:
                prometheus.stop()
        print(f"\nfake provider served {provider.request_count} LLM requests")

    ledger_url = f"sqlite:///{ledger}"
    for group in ("user", "feature"):
        print(f"\ncost per {group} (from the ledger, {ledger}):")
        cli_main(["report", "--ledger", ledger_url, "--group-by", group])
    print(f"\nmore: genai-meter report --ledger {ledger_url} --group-by tenant,model")
    if _sum(metrics_text, names.REQUESTS.prometheus_name) == 0:
        print("genai-meter demo: /metrics never showed a metered call: the app ran unmetered", file=sys.stderr)
        return 1
    return 0 if app.returncode == 0 else 1


def _sum(metrics_text: str, name: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name + "{"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                continue
    return total


def _start_prometheus(metrics_port: int, workdir: Path) -> Any:
    """Debian's Prometheus on 127.0.0.1 with the shipped alert rules, scraping the demo app."""
    import yaml

    from .._prometheus_server import PrometheusProcess
    from ..monitoring import _rules

    rules = workdir / _rules.RULES_FILE
    rules.write_text(yaml.safe_dump(_rules.rule_groups(), sort_keys=False), encoding="utf-8")
    process = PrometheusProcess([f"127.0.0.1:{metrics_port}"], rule_files=[rules], scrape_interval="1s")
    process.start()
    print(f"\nPrometheus: {process.url} (alerts: {process.url}/alerts); Ctrl-C to stop")
    return process
