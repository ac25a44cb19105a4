"""An in-process `/metrics` endpoint for apps that are not run with an OTel metrics exporter.

Under `opentelemetry-instrument`, `OTEL_METRICS_EXPORTER=prometheus` already serves `/metrics`
(OTel's Prometheus exporter). This helper is for everything else: it installs a MeterProvider with
a Prometheus reader when none is set and serves it with prometheus-client on 127.0.0.1 by default.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider


def serve_metrics(port: int = 9464, host: str = "127.0.0.1") -> tuple[Any, MeterProvider]:
    """Serve `/metrics` on host:port; returns (the HTTP server, the meter provider in use)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    provider = metrics.get_meter_provider()
    if not isinstance(provider, MeterProvider):
        provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
        metrics.set_meter_provider(provider)
    server, _thread = start_http_server(port, addr=host)
    return server, provider
