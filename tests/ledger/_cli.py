"""Running a ledger sub-command in-process, as `genai-meter` would, and capturing its output."""

from __future__ import annotations

import argparse

import pytest

from genai_meter.cli._ledger import register


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `genai-meter <argv>`; an exception escapes as a traceback would."""
    parser = argparse.ArgumentParser(prog="genai-meter")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err
