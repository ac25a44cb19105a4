"""PrometheusProcess fails clearly when it cannot do its job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from genai_meter._prometheus_server import PrometheusError, PrometheusNotInstalled, PrometheusProcess


def test_missing_binary_names_the_package() -> None:
    with pytest.raises(PrometheusNotInstalled, match="apt-get install prometheus"):
        PrometheusProcess(["127.0.0.1:9"], binary="no-such-prometheus-binary").start()


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match=r"not on 127\.0\.0\.1"):
        PrometheusProcess(["10.0.0.1:9100"])


def test_missing_rule_file_is_named(binary: Callable[[str], str], tmp_path: Path) -> None:
    binary("prometheus")
    with pytest.raises(PrometheusError, match="rule file not found"):
        PrometheusProcess(["127.0.0.1:9"], rule_files=[tmp_path / "nope.yml"]).start()


def test_bad_query_reports_prometheus_error(binary: Callable[[str], str]) -> None:
    binary("prometheus")
    with PrometheusProcess(["127.0.0.1:9"]) as prom:
        assert prom.url.startswith("http://127.0.0.1:")
        assert prom.query("1 + 1") == [
            {"metric": {}, "value": [pytest.approx(prom.query("time()")[0]["value"][0], abs=5), "2"]}
        ]
        with pytest.raises(PrometheusError, match="parse error"):
            prom.query("sum(")
