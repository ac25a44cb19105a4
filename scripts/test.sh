#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), then pytest twice: the instrumentation tests
# against the previous major versions of the SDKs (openai 2, anthropic 1, google-genai 2) in their
# own virtual environment, then everything against the current ones (rule checks with promtool,
# real Prometheus, Redis and PostgreSQL included). Does its own set-up first (scripts/setup.sh).
# Extra arguments go to the last pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
echo "== ruff"; ruff check src tests benchmarks dashboards examples
echo "== mypy"; mypy

prev=.venv-prev
if [ ! -f "$prev/.genai-meter-installed" ] || [ pyproject.toml -nt "$prev/.genai-meter-installed" ]; then
  echo "== setting up $prev (previous SDK majors)"
  python3 -m venv "$prev"
  "$prev/bin/python" -m pip install --quiet --upgrade pip
  "$prev/bin/python" -m pip install --quiet -e ".[dev]" "openai>=2,<3" "anthropic>=1,<2" "google-genai>=2,<3"
  touch "$prev/.genai-meter-installed"
fi
echo "== pytest, previous SDK majors ($("$prev/bin/python" -c 'import openai, anthropic; from google import genai; print(f"openai {openai.__version__}, anthropic {anthropic.__version__}, google-genai {genai.__version__}")'))"
"$prev/bin/python" -m pytest -q -p no:cacheprovider tests/openai tests/anthropic tests/gemini tests/test_zero_code.py

echo "== pytest, current SDKs"
exec python -m pytest -q -p no:cacheprovider "$@"
