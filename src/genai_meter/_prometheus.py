"""An in-process `/metrics` endpoint for apps that are not run with an OTel metrics exporter.

Under `opentelemetry-instrument`, `OTEL_METRICS_EXPORTER=prometheus` already serves `/metrics`
(OTel's Prometheus exporter). This helper is for everything else: it installs a MeterProvider with
a Prometheus reader when none is set and serves it with prometheus-client on 127.0.0.1 by default.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

DEFAULT_PORT = 9464  # the OTel Prometheus exporter's own default
logger = logging.getLogger("genai_meter")


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
    elif not _has_prometheus_reader(provider, PrometheusMetricReader):
        # Readers cannot be added to a provider once made: the endpoint would look healthy and hold
        # none of the app's metrics. Said, not raised: serving is not worth stopping the app for.
        logger.error(
            "genai-meter: serve_metrics(): the app's MeterProvider has no Prometheus reader, so "
            "%s:%s/metrics will hold no genai-meter metrics; under opentelemetry-instrument set "
            "OTEL_METRICS_EXPORTER=prometheus instead, or call serve_metrics() before a MeterProvider is set",
            host,
            port,
        )
    server, _thread = start_http_server(port, addr=host)
    return server, provider


def _has_prometheus_reader(provider: MeterProvider, reader_type: type[Any]) -> bool:
    """Whether `provider` exports through a Prometheus reader (True when its readers cannot be seen)."""
    readers = getattr(provider, "_metric_readers", None)  # (the OTel SDK's own, private)
    if readers is None:
        readers = getattr(getattr(provider, "_sdk_config", None), "metric_readers", None)
    return readers is None or any(isinstance(reader, reader_type) for reader in readers)
