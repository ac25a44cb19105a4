"""An ordinary OpenAI app with no genai-meter code at all: run it under the launcher,

    opentelemetry-instrument python examples/chat_app.py

and every call below becomes a span and metrics with tokens, cost and the user (taken here from the
request's own `user` field). Set OPENAI_BASE_URL to the fake provider for an offline run.
With CHAT_APP_WAIT=1 it waits for a line on stdin before exiting, so /metrics can be scraped.
"""

from __future__ import annotations

import json
import os
import sys

import openai

USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 200}}


def main() -> int:
    client = openai.OpenAI(max_retries=0)
    headers = {"x-fake-usage": json.dumps(USAGE)}  # understood by genai-meter's fake provider only
    messages = [{"role": "user", "content": "What does metering mean?"}]
    client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, user="alice", extra_headers=headers
    )  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        user="bob",
        stream=True,
        extra_headers=headers,  # type: ignore[arg-type]
    )
    chunks = [chunk for chunk in stream]
    print(
        f"chat_app: done, {len(chunks)} chunks streamed, usage chunk seen: {chunks[-1].choices == []}",
        flush=True,
    )
    if os.environ.get("CHAT_APP_WAIT") == "1":
        sys.stdin.readline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
