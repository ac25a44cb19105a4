"""`fake-provider` sub-command: prints its URL, serves, exits 0 on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from genai_meter.fake_provider import FakeProvider

SRC = str(Path(__file__).resolve().parents[2] / "src")
# Only this sub-command's module, so the test does not depend on the other commands.
PROGRAM = (
    "import argparse, sys\n"
    "from genai_meter.cli._fake_provider import register\n"
    "parser = argparse.ArgumentParser(prog='genai-meter')\n"
    "register(parser.add_subparsers(dest='command'))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


def launch(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "fake-provider", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_signal_then_exits_zero(sig: signal.Signals) -> None:
    proc = launch("--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"fake provider listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        reply = httpx2.post(f"{match.group(1)}/v1/chat/completions", json={"model": "m", "messages": []})
        assert reply.json()["usage"]["completion_tokens"] == 3
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_port_is_a_clear_error() -> None:
    proc = launch("--port", "99999")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "--port: 99999 is outside 0..65535" in err
    assert "Traceback" not in err


def test_port_in_use_is_a_clear_error() -> None:
    with FakeProvider() as taken:
        port = taken.port
        proc = launch("--port", str(port))
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err and out == ""
