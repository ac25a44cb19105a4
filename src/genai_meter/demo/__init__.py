"""The offline demo: an ordinary OpenAI app (`app.py`) run under `opentelemetry-instrument` against the
project's fake provider, with budgets, a ledger and `/metrics`. `genai-meter demo` drives it."""
