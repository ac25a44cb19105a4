"""The real thing end to end: the demo app under `opentelemetry-instrument`, driven through the fake
provider, scraped by Debian's Prometheus with the shipped rules. The per-user cost Prometheus
reports equals the ledger's (the known spend), and a budget alert reaches `firing`."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genai_meter import names
from genai_meter.ledger import open_ledger
from genai_meter.monitoring import _rules

from .conftest import require

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "dashboards" / "rules" / _rules.RULES_FILE
pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_app_scraped_by_prometheus(fake_provider: Any, tmp_path: Path) -> None:
    from genai_meter._prometheus_server import PrometheusProcess

    require(shutil.which("prometheus") is not None, "Debian's prometheus is not installed")
    port = _free_port()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    config = tmp_path / "config.yaml"
    config.write_text(
        f'ledger_url: "{ledger_url}"\n'
        'provider_hosts: {"127.0.0.1": openai}\n'
        'inject_stream_usage: {"127.0.0.1": true}\n'
        "budgets:\n  store: memory\n  policies:\n"
        "    - {name: per-user-daily, scope: [user], period: day, limit_usd: 0.02, mode: soft}\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GENAI_METER_"))},
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic",
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "OPENAI_API_KEY": "sk-e2e",
        "GENAI_METER_CONFIG": str(config),
        "DEMO_ROUNDS": "2",
        "DEMO_SERVE_SECONDS": "90",
    }
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    app = subprocess.Popen([str(launcher), sys.executable, "-m", "genai_meter.demo.app"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    prometheus = PrometheusProcess([f"127.0.0.1:{port}"], rule_files=[RULES], scrape_interval="1s")
    try:
        assert app.stdout is not None
        for line in app.stdout:  # the app says when its calls are done and it only serves /metrics
            if "serving /metrics" in line:
                break
        prometheus.start()
        with open_ledger(ledger_url) as ledger:
            rows = list(ledger.export())
        known: dict[str, float] = {}
        for row in rows:
            if row["cost_usd"] is not None:
                known[str(row["user_id"])] = known.get(str(row["user_id"]), 0.0) + float(row["cost_usd"])
        assert len(known) == 5 and all(value > 0 for value in known.values())
        query = f"sum by ({names.LABEL_USER}) ({names.COST.prometheus_name})"
        prometheus.wait_for(lambda: len(prometheus.query(query)) == len(known), what="per-user cost series")
        reported = {s["metric"][names.LABEL_USER]: float(s["value"][1]) for s in prometheus.query(query)}
        assert reported.keys() == known.keys()
        for user, spend in known.items():
            assert math.isclose(reported[user], spend, abs_tol=1e-9), (user, reported[user], spend)
        # carol and bob spend far over their $0.02 soft budget: the 100 % alert fires (for: 0m).
        prometheus.wait_for_alert("GenAIMeterBudgetExhausted", state="firing", budget="per-user-daily",
                                  scope_value="carol")
    finally:
        prometheus.stop()
        app.kill()
        app.wait(timeout=10)
