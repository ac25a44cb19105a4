"""A small multi-tenant LLM app, as a user would write it: it knows nothing of spans or prices.

It only names who is calling (`genai_meter.attribute`) and handles `BudgetExceeded`; everything
else (spans, metrics, cost, budgets, ledger) comes from `opentelemetry-instrument`. The fake
provider answers with the token counts given in `x-fake-usage`, so the spend is known exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import openai

import genai_meter

# (user, tenant, feature, model, kind, input tokens, output tokens, cached tokens)
CALLS = [
    ("alice", "acme", "chat", "gpt-4o-mini", "chat", 1200, 300, 0),
    ("alice", "acme", "chat", "gpt-4o-mini", "chat-stream", 800, 250, 400),
    ("bob", "acme", "summarise", "gpt-4o", "chat", 6000, 400, 2048),
    ("bob", "acme", "search", "text-embedding-3-small", "embeddings", 5000, 0, 0),
    ("carol", "globex", "chat", "gpt-4.1-mini", "responses", 2000, 600, 0),
    ("carol", "globex", "summarise", "gpt-4o", "chat-stream", 9000, 700, 0),
    ("dave", "globex", "chat", "gpt-4o", "responses-stream", 3000, 900, 1024),
    ("erin", "initech", "chat", "gpt-4o-mini", "chat", 1500, 500, 0),
    ("erin", "initech", "summarise", "gpt-4o-mini", "async-chat", 4000, 350, 0),
]


def _headers(input_tokens: int, output_tokens: int, cached: int, kind: str) -> dict[str, str]:
    if kind.startswith("responses"):
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
    else:
        usage = {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
    return {"x-fake-usage": json.dumps(usage)}


def _one_call(client: openai.OpenAI, model: str, kind: str, headers: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "Tell me about metering."}]
    if kind == "chat":
        client.chat.completions.create(model=model, messages=messages, extra_headers=headers)  # type: ignore[arg-type]
    elif kind == "chat-stream":
        for _chunk in client.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            extra_headers=headers,  # type: ignore[arg-type]
        ):
            pass
    elif kind == "embeddings":
        client.embeddings.create(model=model, input=["a document to index"], extra_headers=headers)
    elif kind == "responses":
        client.responses.create(model=model, input="Tell me about metering.", extra_headers=headers)
    elif kind == "responses-stream":
        with client.responses.stream(
            model=model, input="Tell me about metering.", extra_headers=headers
        ) as stream:
            stream.get_final_response()


async def _async_call(model: str, headers: dict[str, str]) -> None:
    client = openai.AsyncOpenAI(max_retries=0)
    try:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Summarise."}], extra_headers=headers
        )
    finally:
        await client.close()


def main() -> int:
    rounds = int(os.environ.get("DEMO_ROUNDS", "3"))
    serve_seconds = float(os.environ.get("DEMO_SERVE_SECONDS", "0"))
    client = openai.OpenAI(max_retries=0)
    blocked = 0
    made = 0
    for _round in range(rounds):
        for user, tenant, feature, model, kind, tokens_in, tokens_out, cached in CALLS:
            headers = _headers(tokens_in, tokens_out, cached, kind)
            try:
                with genai_meter.attribute(user=user, tenant=tenant, feature=feature):
                    if kind == "async-chat":
                        asyncio.run(_async_call(model, headers))
                    else:
                        _one_call(client, model, kind, headers)
                made += 1
            except genai_meter.BudgetExceeded as exceeded:
                blocked += 1
                print(
                    f"blocked: {user}@{tenant} by budget {exceeded.budget!r} "
                    f"(spent ${exceeded.spend_usd:.4f} of ${exceeded.limit_usd:.2f})",
                    flush=True,
                )
    genai_meter.flush()
    print(f"demo app: {made} calls made, {blocked} blocked by budgets", flush=True)
    for status in genai_meter.budget_status(tenant="globex"):
        print(
            f"budget {status.budget} [{status.scope_value}]: {status.percent_used:.0f}% used ({status.level})",
            flush=True,
        )
    if serve_seconds > 0:
        print(f"demo app: serving /metrics for {serve_seconds:.0f} s more", flush=True)
        time.sleep(serve_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
