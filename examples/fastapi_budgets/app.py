"""A FastAPI service whose LLM spend is budgeted per user and tenant.

    GENAI_METER_CONFIG=examples/fastapi_budgets/genai-meter.yaml \
    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=sk-local \
    BUDGET_WEBHOOK_URL=http://127.0.0.1:9000/hooks/budget \
    uvicorn examples.fastapi_budgets.app:app --host 127.0.0.1 --port 8000

Callers send `Authorization: Bearer <user>:<tenant>` (a stand-in for the app's real auth). Every
OpenAI call made while handling the request is attributed to that user and tenant; when a hard
budget or the block list stops the call, genai-meter raises `BudgetExceeded` *before* the request
goes out, and the app answers 429 with an upgrade message. `GET /budget` feeds a progress bar.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from openai import OpenAI
from pydantic import BaseModel

import genai_meter
from genai_meter import BudgetExceeded, ThresholdEvent, attribute
from genai_meter.instrumentation.openai import OpenAIInstrumentor

logger = logging.getLogger("fastapi_budgets")
WEBHOOK_URL = os.environ.get("BUDGET_WEBHOOK_URL")
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")


def _post_webhook(payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        WEBHOOK_URL or "", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except OSError as error:
        logger.warning("budget webhook failed: %s", error)


@genai_meter.on_budget_threshold
def notify(event: ThresholdEvent) -> None:
    """Fires once per budget, scope value, threshold and period, across all the app's processes.

    The callback runs on the thread that settled the LLM call, so the HTTP post goes to a thread
    of its own: a slow webhook must not slow down the user's request.
    """
    if not WEBHOOK_URL:
        return
    payload = {
        "text": f"Budget {event.budget} ({event.scope_value}) reached {event.threshold_percent:g}%: "
        f"${event.spend_usd:.2f} of ${event.limit_usd:.2f}",
        "budget": event.budget,
        "scope_value": event.scope_value,
        "threshold_percent": event.threshold_percent,
        "period_end": event.period_end.isoformat(),
    }
    threading.Thread(target=_post_webhook, args=(payload,), daemon=True).start()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    OpenAIInstrumentor().instrument()  # or run under `opentelemetry-instrument`
    yield
    OpenAIInstrumentor().uninstrument()


app = FastAPI(title="genai-meter budgets example", lifespan=lifespan)
client = OpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL"), api_key=os.environ.get("OPENAI_API_KEY", "sk-local")
)


def caller(authorization: str | None) -> tuple[str, str]:
    """(user, tenant) from `Authorization: Bearer <user>:<tenant>`; a real app verifies a token."""
    scheme, _, credentials = (authorization or "").partition(" ")
    user, _, tenant = credentials.partition(":")
    if scheme.lower() != "bearer" or not user or not tenant:
        raise HTTPException(401, "send Authorization: Bearer <user>:<tenant>")
    return user, tenant


@app.exception_handler(BudgetExceeded)
async def budget_exceeded(_: Request, exceeded: BudgetExceeded) -> JSONResponse:
    """The call was never sent. Tell the user when it resets and how to get more, not the dollars."""
    headers = {}
    if exceeded.resets_at is not None:
        headers["Retry-After"] = str(max(1, int(exceeded.resets_at.timestamp() - time.time())))
    if exceeded.kind == "block_list":
        message = "Your account is suspended. Please contact support."
    else:
        when = exceeded.resets_at.strftime("%d %B %Y %H:%M %Z") if exceeded.resets_at else "later"
        message = f"You have used all of your plan's AI requests until {when}. Upgrade your plan for more."
    return JSONResponse(
        status_code=429,
        content={
            "error": "budget_exceeded",
            "message": message,
            "budget": exceeded.budget,
            "upgrade_url": "/billing/upgrade",
        },
        headers=headers,
    )


class Question(BaseModel):
    question: str


@app.post("/ask")
def ask(body: Question, authorization: str | None = Header(default=None)) -> dict[str, str]:
    user, tenant = caller(authorization)
    with attribute(user=user, tenant=tenant, feature="ask"):
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": body.question}], max_tokens=300
        )
    return {"answer": completion.choices[0].message.content or ""}


@app.get("/budget")
def budget(authorization: str | None = Header(default=None)) -> dict[str, Any]:
    """What a progress bar needs: percent used, a level and "about N requests left" (no dollars)."""
    user, tenant = caller(authorization)
    budgets = [
        {
            "budget": status.budget,
            "percent_used": round(status.percent_used, 1),
            "level": status.level,
            "resets_at": status.period_end.isoformat(),
            "uses_remaining": {
                "min": status.uses_remaining_min,
                "max": status.uses_remaining_max,
                "confidence": status.confidence,
            },
        }
        for status in genai_meter.budget_status(user=user, tenant=tenant, feature="ask")
    ]
    # The tightest budget decides what the user can still do.
    tightest = max(budgets, key=lambda b: b["percent_used"], default=None)
    return {"budgets": budgets, "tightest": tightest}
