#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), rule checks (promtool) and pytest.
# Does its own set-up first (scripts/setup.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
echo "== ruff"; ruff check src tests benchmarks dashboards examples
echo "== mypy"; mypy
echo "== pytest"; exec python -m pytest -q -p no:cacheprovider "$@"
