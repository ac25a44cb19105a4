"""Grafana dashboards and Prometheus alert rules for genai-meter, generated from code.

Every metric and label name comes from `genai_meter.names`, so a rename there moves the dashboards,
recording rules, alerts and their unit tests with it. Regenerate the committed files with::

    genai-meter dashboards            # writes ./dashboards/{json,rules}
    genai-meter dashboards --check    # exit 1 if the committed files are stale

`render()` returns every file as text (relative path -> content); `write(dir)` and `check(dir)` work
on a directory. Generating the dashboards needs `grafanalib` (a development dependency); the
generated JSON and YAML need nothing at run time.
"""

from genai_meter.monitoring._render import GrafanalibMissing, check, render, write
from genai_meter.monitoring._rules import ALERTS, RECORDING_RULES, RUNBOOK_URL, Alert

__all__ = [
    "ALERTS",
    "RECORDING_RULES",
    "RUNBOOK_URL",
    "Alert",
    "GrafanalibMissing",
    "check",
    "render",
    "write",
]
