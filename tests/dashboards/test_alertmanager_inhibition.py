"""The Alertmanager example, run for real: a budget's critical alert inhibits its warning and info tiers."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from genai_meter import names
from genai_meter._prometheus_server import free_port
from genai_meter.monitoring import _rules

from .conftest import COLLECTOR_DIR


@pytest.fixture
def alertmanager(binary: Callable[[str], str]) -> Iterator[str]:
    exe = binary("prometheus-alertmanager")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [
                exe,
                f"--config.file={COLLECTOR_DIR / 'alertmanager.yml'}",
                f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                        break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline, "alertmanager not ready"
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _post(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def _alert(rule: _rules.Alert, budget: str, who: str) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": rule.name,
            _rules.SEVERITY: rule.severity,
            names.LABEL_BUDGET: budget,
            names.LABEL_SCOPE_VALUE: who,
        }
    }


def test_critical_budget_alert_inhibits_lower_tiers_of_the_same_budget(alertmanager: str) -> None:
    _post(
        alertmanager,
        [
            *(_alert(tier, "daily-user", "alice") for tier in _rules.BUDGET_TIERS),
            _alert(_rules.BUDGET_75, "daily-user", "bob"),  # another scope value: not inhibited
            _alert(_rules.BUDGET_90, "daily-user", "carol"),  # warning hides info of the same budget
            _alert(_rules.BUDGET_75, "daily-user", "carol"),
        ],
    )

    def states() -> dict[tuple[str, str], bool]:
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as resp:
            alerts = json.loads(resp.read())
        return {
            (a["labels"]["alertname"], a["labels"][names.LABEL_SCOPE_VALUE]): bool(a["status"]["inhibitedBy"])
            for a in alerts
        }

    expected = {
        (_rules.BUDGET_100.name, "alice"): False,
        (_rules.BUDGET_90.name, "alice"): True,
        (_rules.BUDGET_75.name, "alice"): True,
        (_rules.BUDGET_75.name, "bob"): False,
        (_rules.BUDGET_90.name, "carol"): False,
        (_rules.BUDGET_75.name, "carol"): True,
    }
    deadline = time.monotonic() + 10
    while states() != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert states() == expected
