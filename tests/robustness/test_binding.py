"""Servers genai-meter starts listen on 127.0.0.1 unless told otherwise (never on every interface)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from genai_meter.fake_provider import FakeProvider

from ..conftest import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_fake_provider_binds_loopback() -> None:
    with FakeProvider() as provider:
        assert urlsplit(provider.base_url).hostname == "127.0.0.1"
        server = provider._server
        assert server is not None
        assert server.server_address[0] == "127.0.0.1"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` run by a Python of its own (serve_metrics may install the global meter provider, which
    would leak into every later test of this process), with these environment variables."""
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
        **env,
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ)
    assert done.returncode == 0, done.stderr
    return done


def _served_address(call: str, **env: str) -> tuple[str, int]:
    """Where `genai_meter.<call>` serves /metrics."""
    code = (
        "import json, genai_meter\n"
        f"server, _provider = genai_meter.{call}\n"
        "print(json.dumps(list(server.server_address[:2])))\n"
        "server.shutdown()\n"
    )
    host, port = json.loads(_python(code, **env).stdout.strip().splitlines()[-1])
    return host, port


def test_serve_metrics_binds_loopback() -> None:
    host, port = _served_address("serve_metrics(port=0)")
    assert host == "127.0.0.1"
    assert port > 0


def _configured_metrics_address(port: str) -> tuple[str, int]:
    """Where `serve_metrics()` serves with `GENAI_METER_PROMETHEUS_PORT=port`."""
    return _served_address("serve_metrics()", GENAI_METER_PROMETHEUS_PORT=port, GENAI_METER_LEDGER_URL="off")


def test_serve_metrics_takes_its_address_from_the_configuration() -> None:
    port = free_port()
    assert _configured_metrics_address(str(port)) == ("127.0.0.1", port)


def test_a_configured_port_0_is_a_free_port_the_system_picks() -> None:
    host, port = _configured_metrics_address("0")
    assert host == "127.0.0.1" and port not in (0, 9464)  # (0 was taken for "unset": the default 9464)


def test_serve_metrics_says_when_the_apps_provider_cannot_feed_it() -> None:
    """An SDK MeterProvider without a Prometheus reader (the app's own, or the launcher's with OTLP):
    the endpoint would serve no genai-meter metrics; it once did so without a word."""
    code = (
        "import logging, genai_meter\n"
        "from opentelemetry import metrics\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "logging.basicConfig(level=logging.ERROR, format='%(levelname)s %(message)s')\n"
        "metrics.set_meter_provider(MeterProvider())\n"
        "server, _provider = genai_meter.serve_metrics(port=0)\n"
        "server.shutdown()\n"
    )
    done = _python(code, GENAI_METER_LEDGER_URL="off")
    assert "ERROR genai-meter: serve_metrics(): the app's MeterProvider has no Prometheus reader" in done.stderr
