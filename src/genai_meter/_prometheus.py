"""An in-process `/metrics` endpoint for apps that are not run with an OTel metrics exporter.

Under `opentelemetry-instrument`, `OTEL_METRICS_EXPORTER=prometheus` already serves `/metrics`
(OTel's Prometheus exporter). This helper is for everything else: it installs a MeterProvider with
a Prometheus reader when none is set and serves it with prometheus-client on 127.0.0.1 by default.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

DEFAULT_PORT = 9464  # the OTel Prometheus exporter's own default


def serve_metrics(port: int | None = None, host: str | None = None) -> tuple[Any, MeterProvider]:
    """Serve `/metrics` on host:port; returns (the HTTP server, the meter provider in use).

    Without arguments, the configuration's `prometheus_port` (else 9464; 0 is a free port, which
    `server.server_port` tells) and `prometheus_host` (127.0.0.1 unless told otherwise)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    from ._runtime import get_runtime

    if port is None or host is None:
        config = get_runtime().config
        if port is None:  # (a configured 0 is a free port the system picks, as for the argument)
            port = config.prometheus_port if config.prometheus_port is not None else DEFAULT_PORT
        host = host if host is not None else config.prometheus_host

    provider = metrics.get_meter_provider()
    if not isinstance(provider, MeterProvider):
        provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
        metrics.set_meter_provider(provider)
    server, _thread = start_http_server(port, addr=host)
    return server, provider
