#!/usr/bin/env bash
# The offline demo: a local fake provider, an app run under `opentelemetry-instrument` making calls
# for several users, tenants and features, budgets, a report, and /metrics on 127.0.0.1.
# Does its own set-up first (scripts/setup.sh). Extra arguments go to `genai-meter demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/genai-meter demo "$@"
