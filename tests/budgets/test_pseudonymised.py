"""Budgets with `pseudonymize_users_key`: people write raw user ids (policy matches, the block list,
`budget_status`, the CLI) while calls reach the guard with pseudonymised ids, and no raw id is
stored, put on a span or raised to the app."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import genai_meter
from genai_meter._attribution import Pseudonymizer
from genai_meter._runtime import configure
from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall
from genai_meter.cli import _budgets

from ..conftest import Telemetry, fake_provider_settings
from ..openai.test_chat import EXPECTED_COST, MESSAGES, client, usage_headers
from .conftest import redis_client
from .test_cli import run

KEY = "s3cret"
pseudonym = Pseudonymizer(KEY)
ALICE, MALLORY, EVE = pseudonym("alice"), pseudonym("mallory"), pseudonym("eve")
RAW_IDS = ("alice", "mallory", "eve")

POLICIES: list[dict[str, Any]] = [
    {"name": "vip-cap", "scope": "user", "match": {"user": "alice"}, "max_requests": 1, "mode": "hard"},
    {"name": "per-user", "scope": "user", "limit_usd": 1, "mode": "hard"},
]
BLOCKED: list[dict[str, Any]] = [{"user": "mallory", "reason": "abuse"}, {"tenant": "evil", "reason": "unpaid"}]


def call(user: str | None = None, tenant: str | None = None) -> PendingCall:
    return PendingCall("openai", "gpt-4o", "chat", user=user, tenant=tenant, estimate_usd=0.01)


def stored_text(store: dict[str, Any]) -> str:
    """Everything a shared store holds (keys, block list), as text; "" for the in-process store."""
    url = str(store["store"])
    if url.startswith("sqlite://"):
        with sqlite3.connect(url[len("sqlite://") :]) as conn:
            tables = ("budget_counters", "budget_recent", "budget_blocked")
            return repr([row for table in tables for row in conn.execute(f"SELECT * FROM {table}")])
    if url.startswith("redis://"):
        redis = redis_client(url)
        prefix = store["key_prefix"]
        keys = sorted(redis.scan_iter(match=f"{prefix}:*"))
        text = repr(keys) + repr(redis.hgetall(f"{prefix}:blocked"))
        redis.close()
        return text
    return ""


def test_raw_ids_in_the_policy_match_pseudonymised_calls(
    make_guard: Callable[..., BudgetGuard], store: dict[str, Any]
) -> None:
    guard = make_guard(POLICIES, section={"blocked": BLOCKED}, pseudonymize=pseudonym)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(MALLORY))
    assert (caught.value.budget, caught.value.scope_value, caught.value.reason) == ("block_list", MALLORY, "abuse")
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(tenant="evil"))  # tenants are never pseudonymised
    assert caught.value.reason == "unpaid"

    reservation = guard.check_and_reserve(call(ALICE))
    assert reservation is not None and reservation.budgets == ("vip-cap", "per-user")
    guard.settle(reservation, 0.25)
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_and_reserve(call(ALICE))
    assert (caught.value.budget, caught.value.scope_value, caught.value.kind) == ("vip-cap", ALICE, "requests")
    assert {(s.budget, s.scope_value, s.requests, s.spend_usd) for s in guard.status(user=ALICE)} == {
        ("vip-cap", ALICE, 1, 0.25),
        ("per-user", ALICE, 1, 0.25),
    }
    reservation = guard.check_and_reserve(call(pseudonym("bob")))
    assert reservation is not None and reservation.budgets == ("per-user",)

    guard.block("user", EVE, "chargeback")  # admin calls take the calls' form, as the CLI gives it
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(call(EVE))
    assert guard.blocked() == {("user", MALLORY): "abuse", ("user", EVE): "chargeback", ("tenant", "evil"): "unpaid"}
    assert not any(raw in stored_text(store) for raw in RAW_IDS)


def test_app_and_budget_status_take_raw_ids(telemetry: Telemetry, fake_provider: Any) -> None:
    budgets = {"store": "memory", "policies": POLICIES, "blocked": BLOCKED}
    configure(**fake_provider_settings(fake_provider, pseudonymize_users_key=KEY, budgets=budgets))
    sdk = client(fake_provider)

    def send(user: str) -> None:
        with genai_meter.attribute(user=user):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())

    send("alice")
    with pytest.raises(BudgetExceeded) as caught:
        send("alice")
    assert (caught.value.budget, caught.value.scope_value, caught.value.kind) == ("vip-cap", ALICE, "requests")
    with pytest.raises(BudgetExceeded) as caught:
        send("mallory")
    assert (caught.value.budget, caught.value.scope_value) == ("block_list", MALLORY)

    statuses = {s.budget: s for s in genai_meter.budget_status(user="alice")}
    assert sorted(statuses) == ["per-user", "vip-cap"]
    assert (statuses["vip-cap"].scope_value, statuses["vip-cap"].requests, statuses["vip-cap"].level) == (
        ALICE,
        1,
        "exceeded",
    )
    assert statuses["per-user"].spend_usd == pytest.approx(EXPECTED_COST, abs=1e-12)
    [bob] = genai_meter.budget_status(user="bob")
    assert (bob.budget, bob.scope_value, bob.spend_usd) == ("per-user", pseudonym("bob"), 0.0)
    recorded = repr([(span.attributes, [event.attributes for event in span.events]) for span in telemetry.spans()])
    assert ALICE in recorded and MALLORY in recorded
    assert not any(raw in recorded for raw in RAW_IDS)


def write_config(tmp_path: Path, key_line: str) -> Path:
    db = tmp_path / "budgets.db"
    path = tmp_path / "genai-meter.yaml"
    path.write_text(
        f"{key_line}\nbudgets:\n  store: sqlite://{db}\n  policies: {json.dumps(POLICIES)}\n"
        f"  blocked: {json.dumps(BLOCKED)}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("key_in", ["file", "environment"])
def test_cli_takes_raw_ids_and_stores_pseudonyms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, key_in: str
) -> None:
    """The CLI reads `pseudonymize_users_key` as the app does: from the file or the environment."""
    path = write_config(tmp_path, f"pseudonymize_users_key: {KEY}" if key_in == "file" else "")
    if key_in == "environment":
        monkeypatch.setenv("GENAI_METER_PSEUDONYMIZE_USERS_KEY", KEY)
    app = BudgetGuard(_budgets.load_config(str(path)), pseudonymize=pseudonym)
    reservation = app.check_and_reserve(call(ALICE))
    assert reservation is not None
    app.settle(reservation, 0.4)

    assert run("budgets", "status", "--user", "alice", "--json", "--config", str(path)) == 0
    assert {(s["budget"], s["scope_value"], s["spend_usd"]) for s in json.loads(capsys.readouterr().out)} == {
        ("vip-cap", ALICE, 0.4),
        ("per-user", ALICE, 0.4),
    }
    assert run("budgets", "block", "--user", "eve", "--reason", "chargeback", "--config", str(path)) == 0
    assert capsys.readouterr().out == f"blocked user 'eve' (stored as {EVE}): chargeback\n"
    app_blocks = app.blocked()
    app.close()
    assert app_blocks == {("user", EVE): "chargeback", ("user", MALLORY): "abuse", ("tenant", "evil"): "unpaid"}
    assert run("budgets", "unblock", "--user", "mallory", "--config", str(path)) == 2
    assert "is blocked by the configuration file" in capsys.readouterr().err
    assert run("budgets", "unblock", "--user", "eve", "--config", str(path)) == 0
    assert capsys.readouterr().out == f"unblocked user 'eve' (stored as {EVE})\n"
    assert run("budgets", "blocked", "--json", "--config", str(path)) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [
        {"kind": "tenant", "value": "evil", "reason": "unpaid"},
        {"kind": "user", "value": MALLORY, "reason": "abuse"},
    ]
    assert "user ids are pseudonymised" in err
    assert not any(raw in stored_text({"store": f"sqlite://{tmp_path / 'budgets.db'}"}) for raw in RAW_IDS)


def test_cli_refuses_a_wrong_pseudonymisation_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without the app's key the CLI would compare raw ids with pseudonyms: an error, not a guess;
    the message does not repeat the value, which is a secret."""
    path = write_config(tmp_path, "pseudonymize_users_key: 123456")
    assert run("budgets", "status", "--user", "alice", "--config", str(path)) == 2
    err = capsys.readouterr().err
    assert err == (f"genai-meter budgets: {path}: pseudonymize_users_key: expected text, got a value of type int\n")
