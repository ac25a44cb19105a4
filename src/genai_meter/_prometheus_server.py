"""Runs a real Prometheus (Debian's `prometheus` binary) on 127.0.0.1 for the demo and the tests.

The dashboards and alert rules are only trustworthy if a real Prometheus has scraped real series
and evaluated the rules, so this starts one with a throw-away config and TSDB, and offers the few
HTTP API calls the demo and tests need. Only the standard library is used.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

HOST = "127.0.0.1"
INSTALL_HINT = "install Debian's package: apt-get install prometheus"


class PrometheusError(RuntimeError):
    """Prometheus could not be started, or an API call failed."""


class PrometheusNotInstalled(PrometheusError):
    """The `prometheus` binary is not on PATH."""


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (Prometheus cannot be told to pick one itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str = "prometheus") -> str:
    path = shutil.which(name)
    if path is None:
        raise PrometheusNotInstalled(f"the `{name}` binary was not found on PATH; {INSTALL_HINT}")
    return path


class PrometheusProcess:
    """One Prometheus server on 127.0.0.1 scraping `targets` ("host:port") and evaluating `rule_files`.

    Use as a context manager, or call start() / stop(). Scrape and rule-evaluation intervals are
    short by default (1s) so tests see data and alerts within seconds.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        rule_files: Sequence[Path | str] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str | None = None,
        metrics_path: str = "/metrics",
        job: str = "genai-meter",
        binary: str = "prometheus",
        startup_timeout: float = 30.0,
    ) -> None:
        for target in targets:
            host = target.rsplit(":", 1)[0]
            if host not in (HOST, "localhost"):
                raise ValueError(f"scrape target {target!r} is not on 127.0.0.1")
        self.targets = list(targets)
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.metrics_path = metrics_path
        self.job = job
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def config(self) -> dict[str, Any]:
        """The prometheus.yml this process runs with."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }

    def start(self) -> PrometheusProcess:
        binary = find_binary(self.binary)
        for path in self.rule_files:
            if not path.is_file():
                raise PrometheusError(f"rule file not found: {path}")
        self._dir = tempfile.TemporaryDirectory(prefix="genai-meter-prometheus-")
        work = Path(self._dir.name)
        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False), encoding="utf-8")
        self._log = (work / "prometheus.log").open("wb")
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self._proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address={HOST}:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            try:
                self._wait_ready()
                return self
            except PrometheusError as exc:
                last_error = str(exc)
                self._terminate()
        self.stop()
        raise PrometheusError(f"Prometheus did not start: {last_error}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PrometheusError(f"exited with code {self._proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise PrometheusError(f"not ready after {self.startup_timeout:g}s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "prometheus.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def _terminate(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def stop(self) -> None:
        self._terminate()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- HTTP API --------------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raising PrometheusError with Prometheus' own message."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
            except ValueError:
                raise PrometheusError(f"{path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusError(f"{path}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector (`[{"metric": {...}, "value": [ts, "v"]}, ...]`)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = repr(at)
        data = self.api("query", **params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=repr(start), end=repr(end), step=repr(step))
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) with labels, annotations, state."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def targets_health(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return active

    # --- waiting ---------------------------------------------------------------------------------
    def wait_for(
        self,
        probe: Callable[[], T | None],
        *,
        timeout: float = 30.0,
        interval: float = 0.25,
        what: str = "condition",
    ) -> T:
        """Poll `probe` until it returns something truthy; PrometheusError naming `what` on timeout."""
        deadline = time.monotonic() + timeout
        last: T | None = None
        while True:
            last = probe()
            if last:
                return last
            if time.monotonic() >= deadline:
                raise PrometheusError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
            time.sleep(interval)

    def wait_for_query(self, expr: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until `expr` returns at least one sample."""
        return self.wait_for(lambda: self.query(expr), timeout=timeout, what=f"data from {expr}")

    def wait_for_alert(
        self, name: str, *, state: str = "firing", timeout: float = 30.0, **labels: str
    ) -> dict[str, Any]:
        """Wait until alert `name` with (a superset of) `labels` reaches `state`."""

        def probe() -> dict[str, Any] | None:
            for alert in self.alerts():
                have = alert["labels"]
                if (
                    have.get("alertname") == name
                    and alert["state"] == state
                    and all(have.get(k) == v for k, v in labels.items())
                ):
                    return alert
            return None

        return self.wait_for(probe, timeout=timeout, what=f"alert {name} {labels} to be {state}")
