"""The policy schema: what parses, the defaults, and errors that name the file, budget and field."""

from __future__ import annotations

from typing import Any

import pytest

from genai_meter.budgets import BlockEntry, BudgetPolicy, BudgetPolicyError, parse_budget_config


def test_full_section_parses() -> None:
    config = parse_budget_config(
        {
            "store": "redis://127.0.0.1:6379/0",
            "on_store_error": "closed",
            "timezone": "Europe/Berlin",
            "policies": [
                {"name": "everyone", "period": "day", "limit_usd": 50, "mode": "hard"},
                {
                    "name": "per-feature",
                    "scope": ["tenant", "feature"],
                    "match": {"tenant": "acme", "feature": "*"},
                    "period": "month",
                    "limit_usd": 500,
                    "thresholds": [50, 100, 80, 50],
                    "max_requests": 10000,
                    "max_tokens": 5_000_000,
                    "on_store_error": "open",
                    "timezone": "America/New_York",
                },
                {"name": "rate", "scope": "user", "period": "minute", "max_requests": 60, "mode": "hard"},
            ],
            "blocked": [{"user": "u1", "reason": "abuse"}, {"tenant": 42}],
        },
        "app.yaml",
    )
    assert config.store == "redis://127.0.0.1:6379/0"
    assert config.on_store_error == "closed"
    assert config.policies[0] == BudgetPolicy(
        name="everyone",
        period="day",
        limit_usd=50.0,
        mode="hard",
        timezone="Europe/Berlin",
        on_store_error="closed",
    )
    feature = config.policies[1]
    assert feature.scope == ("tenant", "feature")
    assert feature.match == (("tenant", "acme"), ("feature", "*"))
    assert feature.thresholds == (50.0, 80.0, 100.0)
    assert (feature.max_requests, feature.max_tokens) == (10000, 5_000_000)
    assert (feature.timezone, feature.on_store_error) == ("America/New_York", "open")
    rate = config.policies[2]
    assert (rate.scope, rate.match, rate.limit_usd, rate.thresholds) == (
        ("user",),
        (("user", "*"),),
        None,
        (75.0, 90.0, 100.0),
    )
    assert config.blocked == (BlockEntry("user", "u1", "abuse"), BlockEntry("tenant", "42", ""))


def test_defaults() -> None:
    config = parse_budget_config({"policies": [{"name": "g", "limit_usd": 1}]})
    assert config.store == "memory"
    assert config.on_store_error == "open"
    policy = config.policies[0]
    assert (policy.scope, policy.period, policy.mode, policy.thresholds, policy.timezone) == (
        (),
        "month",
        "soft",
        (75.0, 90.0, 100.0),
        "UTC",
    )
    assert parse_budget_config(None).policies == ()


def test_short_match_for_one_dimension() -> None:
    policy = parse_budget_config(
        {"policies": [{"name": "a", "scope": "tenant", "match": "acme", "limit_usd": 1}]}
    )
    assert policy.policies[0].match == (("tenant", "acme"),)


@pytest.mark.parametrize(
    ("policy", "budget", "field", "fragment"),
    [
        ({"name": "b", "limit_usd": 1, "period": "fortnight"}, "b", "period", "'fortnight' is not one of"),
        ({"name": "b", "limit_usd": -1}, "b", "limit_usd", "at least 0"),
        ({"name": "b", "limit_usd": "ten"}, "b", "limit_usd", "expected a number"),
        ({"name": "b", "limit_usd": 1, "mode": "block"}, "b", "mode", "'block' is not one of soft, hard"),
        ({"name": "b", "limit_usd": 1, "scope": "team"}, "b", "scope", "'team' is not global or one of"),
        ({"name": "b", "limit_usd": 1, "scope": ["user", "user"]}, "b", "scope", "listed twice"),
        (
            {"name": "b", "limit_usd": 1, "scope": "tenant", "match": {"user": "x"}},
            "b",
            "match.user",
            "not in",
        ),
        ({"name": "b", "limit_usd": 1, "thresholds": [75, 0]}, "b", "thresholds", "above 0"),
        ({"name": "b", "limit_usd": 1, "thresholds": "75"}, "b", "thresholds", "list of percentages"),
        (
            {"name": "b", "max_requests": 10, "thresholds": [50, 80, 100]},
            "b",
            "thresholds",
            "thresholds are percentages of limit_usd, and this budget has no limit_usd",
        ),
        ({"name": "b", "max_tokens": 1000, "mode": "hard", "thresholds": [90]}, "b", "thresholds", "no limit_usd"),
        ({"name": "b", "max_requests": 10, "thresholds": []}, "b", "thresholds", "no limit_usd"),
        ({"name": "b", "limit_usd": 1, "max_requests": 1.5}, "b", "max_requests", "whole number"),
        ({"name": "b", "limit_usd": 1, "timezone": "Mars/Olympus"}, "b", "timezone", "unknown time zone"),
        ({"name": "b", "limit_usd": 1, "limit": 2}, "b", "limit", "unknown field"),
        ({"name": "b"}, "b", "limit_usd", "needs limit_usd, max_requests or max_tokens"),
        ({"limit_usd": 1}, None, "policies[0].name", "non-empty name"),
    ],
)
def test_errors_name_budget_and_field(
    policy: dict[str, Any], budget: str | None, field: str, fragment: str
) -> None:
    with pytest.raises(BudgetPolicyError) as caught:
        parse_budget_config({"policies": [policy]}, "app.yaml")
    error = caught.value
    assert (error.source, error.budget, error.field) == ("app.yaml", budget, field)
    assert fragment in str(error)
    assert str(error).startswith("app.yaml: ")
    if budget:
        assert f"budget {budget!r}: field {field!r}" in str(error)


@pytest.mark.parametrize(
    ("section", "field", "fragment"),
    [
        ({"store": "postgres://x"}, "store", "expected memory, sqlite:///path or redis://"),
        ({"store": "sqlite://"}, "store", "needs a file path"),
        (
            {"store": "redis://:notaport/x"},
            "store",
            "'redis://:notaport/x' is not a valid Redis URL: Port could not be cast to integer value as 'notaport'",
        ),
        ({"store": "redis://127.0.0.1:70000/0"}, "store", "Port out of range 0-65535"),
        ({"store": "redis://127.0.0.1/0?socket_timeout=soon"}, "store", "Invalid value for 'socket_timeout'"),
        ({"on_store_error": "maybe"}, "on_store_error", "'maybe' is not one of open, closed"),
        ({"timezone": "Nowhere/City"}, "timezone", "unknown time zone"),
        ({"polices": []}, "polices", "unknown field"),
        ({"blocked": [{"user": "u", "tenant": "t"}]}, "blocked[0]", "exactly one of user or tenant"),
        ({"blocked": [{"group": "g"}]}, "blocked[0].group", "unknown field"),
        ({"policies": {"name": "x"}}, "policies", "expected a list"),
    ],
)
def test_section_errors(section: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(BudgetPolicyError) as caught:
        parse_budget_config(section, "app.yaml")
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_duplicate_names() -> None:
    with pytest.raises(BudgetPolicyError) as caught:
        parse_budget_config(
            {"policies": [{"name": "a", "limit_usd": 1}, {"name": "a", "limit_usd": 2}]}, "f.yaml"
        )
    assert str(caught.value) == "f.yaml: budget 'a': field 'name': two budgets have this name"


def test_store_url_errors_never_show_a_password() -> None:
    """The message goes to logs and terminals: the URL's credentials are masked."""
    with pytest.raises(BudgetPolicyError) as caught:
        parse_budget_config({"store": "redis://admin:hunter2@cache:port/0"}, "app.yaml")
    assert str(caught.value) == (
        "app.yaml: field 'store': 'redis://***@cache:port/0' is not a valid Redis URL: "
        "Port could not be cast to integer value as 'port'"
    )
