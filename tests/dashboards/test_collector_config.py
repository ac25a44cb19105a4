"""The Collector, Prometheus, Alertmanager, Grafana and compose configs, checked offline.

The Collector and Grafana cannot run here; their YAML is checked against the component names and
shapes they accept. Prometheus and Alertmanager configs go through promtool and amtool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_meter import names
from genai_meter.monitoring import _rules

from .conftest import COLLECTOR_DIR, DASHBOARDS_DIR

COLLECTOR_FILES = ("otel-collector.yaml", "otel-collector-remote-write.yaml")
# Component types of opentelemetry-collector-contrib used (or commonly swapped in) here.
KNOWN = {
    "receivers": {"otlp", "prometheus", "hostmetrics"},
    "processors": {"memory_limiter", "batch", "attributes", "resource", "filter", "transform"},
    "exporters": {"prometheus", "prometheusremotewrite", "otlp", "otlphttp", "debug"},
    "extensions": {"health_check", "pprof", "zpages"},
}


def _load(name: str) -> Any:
    return yaml.safe_load((COLLECTOR_DIR / name).read_text())


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_collector_components_and_pipelines(name: str) -> None:
    config = _load(name)
    for kind, known in KNOWN.items():
        for component in config[kind]:
            assert component.split("/")[0] in known, f"{name}: unknown {kind} type {component}"
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert grpc.endswith(":4317") and http.endswith(":4318")
    assert "127.0.0.1" in grpc and "127.0.0.1" in http  # loopback unless the deployment opts out
    service = config["service"]
    assert set(service["extensions"]) <= set(config["extensions"])
    pipelines = service["pipelines"]
    assert set(pipelines) == {"metrics", "traces"}
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            assert pipeline[kind] and set(pipeline[kind]) <= set(config[kind]), f"{name}: {kind}"
        assert pipeline["processors"][0] == "memory_limiter"
        assert pipeline["processors"][-1] == "batch"
    assert pipelines["traces"]["exporters"] == ["otlp/traces"]
    metrics_exporter = pipelines["metrics"]["exporters"]
    assert metrics_exporter == (
        ["prometheus"] if name == "otel-collector.yaml" else ["prometheusremotewrite"]
    )
    assert config["processors"]["memory_limiter"]["check_interval"]


def test_env_placeholders_use_collector_syntax() -> None:
    for name in COLLECTOR_FILES:
        text = (COLLECTOR_DIR / name).read_text()
        assert not re.search(r"\$\{(?!env:)", text), name


def test_promtool_check_config(binary: Callable[[str], str], tmp_path: Path) -> None:
    """Checked where the compose file mounts things: the rule file sits in rules/ next to it."""
    shutil.copy(COLLECTOR_DIR / "prometheus.yml", tmp_path / "prometheus.yml")
    (tmp_path / "rules").mkdir()
    shutil.copy(DASHBOARDS_DIR / "rules" / _rules.RULES_FILE, tmp_path / "rules")
    result = subprocess.run(
        [binary("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout.replace(
        str(len(_rules.RECORDING_RULES) + len(_rules.ALERTS)), "11"
    )
    config = _load("prometheus.yml")
    assert config["rule_files"] == [f"rules/{_rules.RULES_FILE}"]


def test_amtool_check_config(binary: Callable[[str], str]) -> None:
    result = subprocess.run(
        [binary("amtool"), "check-config", str(COLLECTOR_DIR / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "pager"), ("warning", "chat"), ("info", "digest"), ("none", "default")],
)
def test_alertmanager_routes_by_severity(binary: Callable[[str], str], severity: str, receiver: str) -> None:
    result = subprocess.run(
        [
            binary("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={COLLECTOR_DIR / 'alertmanager.yml'}",
            f"severity={severity}",
            f"alertname={_rules.BUDGET_90.name}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_alertmanager_inhibits_lower_budget_tiers() -> None:
    inhibit = _load("alertmanager.yml")["inhibit_rules"]
    budget_key = [names.LABEL_BUDGET, names.LABEL_SCOPE_VALUE]
    assert [rule["equal"] for rule in inhibit] == [budget_key, budget_key]
    for rule in inhibit:
        for matcher in (*rule["source_matchers"], *rule["target_matchers"]):
            label, value = re.fullmatch(r'(\w+)=~?"(.*)"', matcher).groups()  # type: ignore[union-attr]
            if label == "alertname":
                matching = {a.name for a in _rules.ALERTS if re.fullmatch(value, a.name)}
                assert matching == {a.name for a in _rules.BUDGET_TIERS}
    severities = [
        [m for m in (*r["source_matchers"], *r["target_matchers"]) if m.startswith("severity")]
        for r in inhibit
    ]
    assert severities == [
        ['severity="critical"', 'severity=~"warning|info"'],
        ['severity="warning"', 'severity="info"'],
    ]


def test_grafana_provisioning() -> None:
    datasources = _load("grafana/provisioning/datasources/prometheus.yml")
    (ds,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1 and ds["type"] == "prometheus" and ds["isDefault"] is True
    scrape = _load("prometheus.yml")["global"]["scrape_interval"]
    assert ds["jsonData"]["timeInterval"] == scrape
    (provider,) = _load("grafana/provisioning/dashboards/genai-meter.yml")["providers"]
    assert provider["type"] == "file"
    compose = _load("docker-compose.yml")
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in compose["services"]["grafana"]["volumes"])
    assert mounts["../dashboards/json"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_compose_stack() -> None:
    compose = _load("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"otel-collector", "prometheus", "alertmanager", "grafana", "jaeger"}
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image version"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} published beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COLLECTOR_DIR / source).exists(), f"{name}: {source} missing"
    assert (
        "collector" in services["otel-collector"]["image"]
        and "contrib" in services["otel-collector"]["image"]
    )
    env = services["otel-collector"]["environment"]
    assert env["TRACES_OTLP_ENDPOINT"] == "jaeger:4317"
    assert "otel-collector:8889" in str(_load("prometheus.yml")["scrape_configs"])
    assert "alertmanager:9093" in str(_load("prometheus.yml")["alerting"])
