"""Ledger rows across the runtime's life: `configure()` while calls are in flight, interpreter exit
with a stream still open, and multiprocessing workers. Every call leaves exactly one row."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

import genai_meter
from genai_meter.fake_provider import FakeProvider
from genai_meter.instrumentation.openai import OpenAIInstrumentor
from genai_meter.ledger import open_ledger

from ..conftest import fake_provider_settings, instrumented

SRC = str(Path(__file__).resolve().parents[2] / "src")
MESSAGES = [{"role": "user", "content": "hi"}]


def _users(url: str) -> dict[str, int]:
    """Rows per user (flush the live runtime's writer first when the calls were made here)."""
    counts: dict[str, int] = {}
    with open_ledger(url) as ledger:
        for row in ledger.export():
            user = str(row["user_id"])
            counts[user] = counts.get(user, 0) + 1
    return dict(sorted(counts.items()))


@pytest.fixture
def ledger_settings(fake_provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return fake_provider_settings(fake_provider, ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}")


def test_calls_in_flight_across_configure_keep_their_rows(
    fake_provider: FakeProvider, ledger_settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A stream open across `configure()`, and a plain call during which `configure()` runs (from
    an httpx response hook, once the request is on its way): both finish on the replaced runtime,
    whose ledger writer is closed. Same settings, as a configuration reload would give."""
    caplog.set_level(logging.WARNING, logger="genai_meter")
    url = ledger_settings["ledger_url"]
    reconfigure = {"armed": False}

    def on_response(_response: Any) -> None:
        if reconfigure["armed"]:
            reconfigure["armed"] = False
            genai_meter.configure(**ledger_settings)

    http_client = openai.DefaultHttpxClient(event_hooks={"response": [on_response]})
    with instrumented(OpenAIInstrumentor(), **ledger_settings):
        client = openai.OpenAI(
            base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0, http_client=http_client
        )

        def call(user: str, **kwargs: Any) -> Any:
            with genai_meter.attribute(user=user):
                return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)

        call("before")
        with genai_meter.attribute(user="stream"):
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            chunks = iter(stream)
            next(chunks)
        genai_meter.configure(**ledger_settings)
        for _ in chunks:
            pass
        reconfigure["armed"] = True
        call("in-flight")
        assert not reconfigure["armed"]  # configure() did run inside the call
        call("after")
        assert genai_meter.flush()
        assert _users(url) == {"after": 1, "before": 1, "in-flight": 1, "stream": 1}
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("genai_meter")]


_EXIT_CHILD = """
import sys, tempfile
# A finalizer made before the ledger writer exists (tempfile here; any library may): weakref.finalize
# then runs its exit hook after the writer's own, so the open stream is finalised after the writer
# closed.
_tmp = tempfile.TemporaryDirectory()
import openai, genai_meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from genai_meter.instrumentation.openai import OpenAIInstrumentor
OpenAIInstrumentor().instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
genai_meter.configure(ledger_url=sys.argv[2], provider_hosts={"127.0.0.1": "openai"},
                      inject_stream_usage={"127.0.0.1": True})
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk", max_retries=0)
messages = [{"role": "user", "content": "hi"}]
for _ in range(3):
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
next(iter(stream))  # still open at exit: a worker shut down mid-answer
"""


def test_stream_open_at_exit_keeps_its_row(fake_provider: FakeProvider, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_CHILD, fake_provider.openai_base_url, url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with open_ledger(url) as ledger:
        assert ledger.count() == 4  # 3 calls and the stream


_FORK_CHILD = """
import sys
if sys.argv[3] == "first":
    import multiprocessing
import openai, genai_meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from genai_meter.instrumentation.openai import OpenAIInstrumentor

def work(user, n):
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk", max_retries=0)
    with genai_meter.attribute(user=user):
        for _ in range(n):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

if __name__ == "__main__":
    OpenAIInstrumentor().instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
    genai_meter.configure(ledger_url=sys.argv[2], provider_hosts={"127.0.0.1": "openai"})
    work("parent-before", 5)  # still queued at the fork (the writer writes every second)
    import multiprocessing
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=work, args=(f"worker{i}", 3)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    work("parent-after", 2)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("multiprocessing_imported", ["first", "later"])
def test_multiprocessing_fork_workers_keep_their_rows(
    fake_provider: FakeProvider, tmp_path: Path, multiprocessing_imported: str
) -> None:
    """A multiprocessing worker ends with os._exit(), which runs no atexit handler: its writer is
    closed by multiprocessing's own exit finalizers. The rows the parent had queued at the fork are
    written once, by the parent. multiprocessing imported before the ledger writer is made, or only
    after it (the writer registers at the fork then)."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    script = tmp_path / "fork_child.py"
    script.write_text(_FORK_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), fake_provider.openai_base_url, url, multiprocessing_imported],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert _users(url) == {"parent-after": 2, "parent-before": 5, "worker0": 3, "worker1": 3}
