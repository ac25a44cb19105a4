"""The zero-code path, proven: `opentelemetry-instrument python examples/chat_app.py` as a subprocess,
with the real launcher, the real OTel Prometheus exporter and the console span exporter."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from genai_meter import names

ROOT = Path(__file__).resolve().parents[1]
MINI_COST = 800 * 0.15e-6 + 200 * 0.075e-6 + 500 * 0.60e-6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _spans(stdout: str) -> list[dict[str, Any]]:
    """The console exporter prints one JSON object per span."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while True:
        start = stdout.find("{", index)
        if start < 0:
            return spans
        try:
            obj, index = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        if isinstance(obj, dict) and "attributes" in obj and "name" in obj:
            spans.append(obj)


def _sample(metrics_text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_opentelemetry_instrument_meters_an_unmodified_app(fake_provider: Any, tmp_path: Path) -> None:
    port = _free_port()
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GENAI_METER_"))},
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
        "OTEL_SERVICE_NAME": "chat-app",
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "OPENAI_API_KEY": "sk-zero-code-test",
        "GENAI_METER_PROVIDER_HOSTS": "127.0.0.1=openai",
        "GENAI_METER_INJECT_STREAM_USAGE": "127.0.0.1=true",
        "GENAI_METER_LEDGER_URL": "off",
        "CHAT_APP_WAIT": "1",
        # Peer instrumentations may be installed (test extra); this test is about genai-meter alone.
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic",
    }
    process = subprocess.Popen(
        [str(launcher), sys.executable, str(ROOT / "examples" / "chat_app.py")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        metrics_text = ""
        while time.monotonic() < deadline:
            metrics_text = _scrape(port, deadline)
            if names.COST.prometheus_name in metrics_text and 'user="bob"' in metrics_text:
                break
            time.sleep(0.2)
        stdout, stderr = process.communicate("done\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "usage chunk seen: False" in stdout, "the injected usage chunk is hidden from the app"

    for metric in (names.COST, names.TOKENS, names.REQUESTS):
        assert f"# TYPE {metric.prometheus_name} counter" in metrics_text
    assert _sample(
        metrics_text, names.COST.prometheus_name, user="alice", model="gpt-4o-mini"
    ) == pytest.approx(MINI_COST, abs=1e-9)
    assert _sample(metrics_text, names.COST.prometheus_name, user="bob") == pytest.approx(MINI_COST, abs=1e-9)
    assert _sample(metrics_text, names.TOKENS.prometheus_name, type="input") == 2000
    assert _sample(metrics_text, names.TOKENS.prometheus_name, type="cache_read") == 400
    assert _sample(metrics_text, names.REQUESTS.prometheus_name, outcome="ok") == 2
    assert f"{names.TOKEN_USAGE.prometheus_name}_bucket" in metrics_text
    assert f"{names.OPERATION_DURATION.prometheus_name}_bucket" in metrics_text

    spans = [span for span in _spans(stdout) if span["attributes"].get(names.PROVIDER_NAME) == "openai"]
    assert sorted(span["attributes"][names.USER_ID] for span in spans) == ["alice", "bob"]
    for span in spans:
        assert span["kind"] == "SpanKind.CLIENT"
        assert span["attributes"][names.COST_USD] == pytest.approx(MINI_COST, abs=1e-9)
        assert span["attributes"][names.USAGE_INPUT_TOKENS] == 1000
