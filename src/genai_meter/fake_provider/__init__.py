"""A local fake LLM provider that the real `openai`, `anthropic` and `google-genai` SDKs talk to.

Tests and the offline demo need exact, controllable usage figures and provider faults over real
HTTP, without network access or keys. Stdlib only; binds 127.0.0.1 on a free port by default::

    with FakeProvider() as fake:
        openai.OpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)
        anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="x", max_retries=0)
        genai.Client(api_key="x", http_options=types.HttpOptions(base_url=fake.gemini_base_url))

google-genai: pass ``HttpOptions(base_url=fake.gemini_base_url)`` together with an ``api_key``. The
SDK then requests ``{base_url}/{api_version}/models/{model}:generateContent`` (``v1`` by default in
google-genai 3.x, ``v1beta``/``v1alpha`` when ``api_version`` says so; all three are served).
Per-call headers go in ``config=GenerateContentConfig(http_options=HttpOptions(headers={...}))``.

Endpoints (POST unless noted):
  /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions,
  /v1/images/generations, /v1/images/edits (multipart)                      OpenAI
  /v1/messages (also client.beta.messages), /v1/messages/count_tokens      Anthropic
  /{v1,v1beta,v1alpha}/models/{model}:generateContent|:streamGenerateContent|:batchEmbedContents   Gemini
  GET /v1/responses/{id}                                                   OpenAI background responses
  /v1/files (multipart), /v1/batches; GET /v1/batches/{id}, /v1/files/{id}[/content]   OpenAI Batch
                      (completed at once; a line whose custom_id starts with `error` fails)
  /v1/messages/batches; GET /v1/messages/batches/{id}[/results]           Anthropic Message Batches
                      (ended at once, usage at the batch tier; `error...` custom_ids fail)
  /{version}/models/{model}:batchGenerateContent; GET /{version}/batches/{id},
  GET /{version}/files/{id}:download                                       Gemini Batch Mode
                      (inlined requests; the job pending at create, done when read; `error...` keys
                      fail; `x-fake-batch-output: file` writes the responses to a file, one JSON line each)
  GET /v1/organization/usage/completions, /usage/embeddings, /costs        OpenAI admin (Bearer key)
  GET /v1/organizations/usage_report/messages, /cost_report    Anthropic admin (x-api-key or Bearer)

Per-request controls (request headers):
  x-fake-usage        JSON: the provider's own usage object, returned verbatim (nulls and negative
                      numbers included). `total_tokens` (OpenAI) / `totalTokenCount` (Gemini) is
                      added when absent and every present component is an int.
  x-fake-error        status 400-599 with a provider-shaped JSON error body. 429/503/529 carry
                      `retry-after` = x-fake-retry-after (seconds, default "0") and `retry-after-ms`
                      (at least 1, so SDK retries stay fast).
  x-fake-chunks       number of content chunks (default 3): "chunk0 ", "chunk1 ", ...
  x-fake-content      answer text (ASCII), split into x-fake-chunks slices when streamed.
  x-fake-model        model name to return (default: the requested model).
  x-fake-drop-after   streams: cut the connection (unfinished chunked body) after N content chunks
                      (at the latest after the last one). The SDK raises while iterating.
  x-fake-malformed    `sse`: a non-JSON SSE frame after the first content chunk; `json`: 200 with a
                      non-JSON body (also for stream requests).
  x-fake-cost         float, returned as `usage.cost` (OpenRouter style) by the OpenAI endpoints.
  x-fake-latency-ms   sleep before answering.
  x-fake-body-delay-ms
                      whole (non-streamed) answers: send the headers at once and the body this
                      much later (a client reading the body waits there).
  x-fake-write-bytes  streams: write each frame in HTTP chunks of N bytes, 1 ms apart, so the client
                      reads events split at any byte (partial events, split blank lines).
  x-fake-sse-newline  streams: `crlf` ends SSE lines with CR LF (as the spec allows); default `lf`.
  x-fake-stream-content-type
                      streams: the Content-Type to send instead of text/event-stream.
  x-fake-stream-usage chat streams: where the usage goes. `chunk` (default): OpenAI's `choices: []`
                      chunk, with include_usage; `finish`: on the finish chunk instead, with
                      include_usage (as some compatible servers send it); `x_groq`: Groq's
                      `x_groq.usage` on the finish chunk, always (plus the usage chunk with
                      include_usage).
  x-fake-time         Unix seconds or RFC 3339: the call's `created` time and its admin-report bucket.
  x-fake-no-usage     `null` or `absent`: a whole (non-streamed) response whose usage is null or left
                      out (OpenAI, Anthropic, Gemini), as some proxies and compatible servers answer.
  x-fake-finish-reason
                      OpenAI: each choice's finish reason, comma-separated (the last one repeated
                      for further choices); default `stop`.
  x-fake-fields       a JSON object merged into an OpenAI response body and every stream chunk, and
                      into a whole Anthropic message (e.g. `{"model": 5}` for a model that is not
                      text).
  x-fake-background-polls
                      Responses API with `background: true` (answered at once, `queued`, no usage):
                      how many GET /v1/responses/{id} answer `in_progress` before the complete
                      response with its usage (default 0).
  A malformed control header is answered with a 400 whose message names the header.

Default usage, when x-fake-usage is absent:
  prompt tokens     = ceil(C / 4), C = characters of all prompt text: chat `messages[*].content`
                      (strings or text parts), Responses `instructions` + `input`, Anthropic
                      `system` + `messages[*].content`, Gemini `systemInstruction` + `contents`,
                      legacy `prompt`; embeddings: per input ceil(chars / 4), or the length of a
                      token-id array.
  completion tokens = number of content chunks (x-fake-chunks, default 3), streamed or not, times
                      `n` (OpenAI chat answers `n` choices, each streamed as its own chunks).
  OpenAI answers report `service_tier`: the one requested, `default` for none or `auto`.
  Cache, reasoning and other detail counts are 0. Default content is "chunk0 chunk1 chunk2 ";
  structured-output requests (chat `response_format`, Responses `text.format`, Anthropic
  `output_format`/`output_config.format`, Gemini `responseJsonSchema`/`responseSchema`) get a
  minimal JSON instance of their schema instead.

Usage per stream: OpenAI chat/completions add a `choices: []` usage chunk only with
`stream_options.include_usage` (then every other chunk has `"usage": null`); Responses put it in
`response.completed`; Anthropic sends input-side usage with `output_tokens` min(1, final) in
`message_start` and the cumulative final usage in `message_delta`; Gemini sends a partial
`usageMetadata` (prompt count only) on every chunk but the last, which carries the full usage.

`request_count` counts requests to the generation/embedding endpoints (errors included; not
count_tokens or admin GETs). `requests` records every request (lower-cased header names). Admin
reports are built from completed calls only (not errors, drops or malformed answers; Gemini has
none), in UTC-aligned `bucket_width` buckets (default 1d, empty buckets included) from `start_time`
/ `starting_at` to `end_time` / `ending_at` (default: now), grouped by model when `group_by[]` asks
(usage; `models[]` filters), by `line_item` / `description` (costs). One page only: `limit` and
`page` are ignored, `has_more` is false. Costs use the flat, model-independent prices in
`FAKE_PRICES_PER_MTOK` (USD per million tokens: input 1.00, cached input 0.10, cache write 5m 1.25
/ 1h 2.00, output 4.00; OpenAI cache writes are billed as input). `set_report(path, body)` replaces
a report verbatim.
"""

from __future__ import annotations

from ._reports import FAKE_PRICES_PER_MTOK
from ._server import FakeProvider, RecordedRequest

__all__ = ["FAKE_PRICES_PER_MTOK", "FakeProvider", "RecordedRequest"]
