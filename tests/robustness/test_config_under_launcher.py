"""A wrong configuration under the launcher and in `configure()`.

Under `opentelemetry-instrument` nobody can catch an error, so genai-meter gives up only what the
mistake touches: a wrong key falls back to its default (every other key keeps its value: hard
budgets stay enforced, `ledger_url: off` stays off), and a part that cannot be built (prices, budget
guard, ledger writer) is the only part given up. Each is logged once and counted in
`genai_meter_faults_total{where="config"}`. `configure()` in code raises ConfigError instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import genai_meter
from genai_meter import names
from genai_meter._config import ConfigError, load_config, load_config_leniently
from genai_meter._faults import fault_counts
from genai_meter._runtime import configure, get_runtime, reset_runtime
from genai_meter.ledger import open_ledger

from ..conftest import Telemetry, fake_provider_settings
from ..openai.test_chat import EXPECTED_COST, MESSAGES, client, usage_headers

HARD_BUDGET = """
budgets:
  policies:
    - {name: acme-daily, scope: tenant, match: acme, period: day, limit_usd: 0.001, mode: hard}
"""
FALLBACK = "; the rest of the configuration is in force"


def launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_file: str, **env: str) -> Path:
    """As under the launcher: no configure(); the next call builds the runtime from this file and
    these environment variables. Data and state folders are the test's own."""
    reset_runtime()
    monkeypatch.delenv("GENAI_METER_LEDGER_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = tmp_path / "genai-meter.yaml"
    path.write_text(config_file, encoding="utf-8")
    monkeypatch.setenv("GENAI_METER_CONFIG", str(path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return path


def send_three(fake_provider: Any) -> list[str]:
    """Three calls of $0.000435 for tenant acme: a $0.001 hard budget sends two and blocks the third."""
    sdk = client(fake_provider)
    outcomes = []
    with genai_meter.attribute(user="u1", tenant="acme"):
        for _ in range(3):
            try:
                sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
                outcomes.append("sent")
            except genai_meter.BudgetExceeded:
                outcomes.append("blocked")
    return outcomes


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "genai_meter" and r.levelno == logging.ERROR]


def assert_metered(telemetry: Telemetry, sent: int, blocked: int) -> None:
    """Spans and metrics kept working: every call has its span, and the requests and cost add up."""
    assert len(telemetry.spans()) == sent + blocked
    assert telemetry.total(names.REQUESTS.otel_name, outcome=names.OUTCOME_OK) == sent
    assert telemetry.total(names.REQUESTS.otel_name, outcome=names.OUTCOME_BLOCKED) == blocked
    assert telemetry.total(names.COST.otel_name) == pytest.approx(sent * EXPECTED_COST, abs=1e-12)
    assert fault_counts() == {"config": 1}
    assert telemetry.total(names.FAULTS.otel_name, where="config") == 1


def test_one_wrong_key_keeps_the_rest_of_the_configuration(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    launch(tmp_path, monkeypatch, "ledger_url: 'off'\nuser_labels: false\n" + HARD_BUDGET, GENAI_METER_LABEL_CAP="abc")
    assert send_three(fake_provider) == ["sent", "sent", "blocked"]  # the hard budget is enforced
    runtime = get_runtime()
    config = runtime.config
    assert (config.label_cap, config.user_labels, config.ledger_url) == (1000, False, "off")
    assert runtime.ledger is None and not (tmp_path / "data").exists()  # no ledger written
    assert_metered(telemetry, sent=2, blocked=1)
    assert errors_logged(caplog) == [
        "genai-meter: environment: GENAI_METER_LABEL_CAP: expected a whole number, got 'abc'; "
        "label_cap falls back to its default (1000)" + FALLBACK
    ]


def test_ledger_url_that_cannot_be_used_turns_only_the_ledger_off(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    launch(tmp_path, monkeypatch, HARD_BUDGET, GENAI_METER_LEDGER_URL="mysql://meter:pw@db/meter")
    assert send_three(fake_provider) == ["sent", "sent", "blocked"]
    assert get_runtime().ledger is None and get_runtime().config.ledger_url == "off"
    assert not (tmp_path / "data").exists()  # not written to the default file instead
    assert_metered(telemetry, sent=2, blocked=1)
    assert errors_logged(caplog) == [
        "genai-meter: environment: GENAI_METER_LEDGER_URL: ledger URL 'mysql://***@db/meter': unknown scheme "
        "'mysql' (use sqlite or postgresql); the ledger is off" + FALLBACK
    ]


def test_budget_store_url_that_cannot_be_used_turns_only_budgets_off(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    path = launch(tmp_path, monkeypatch, f"ledger_url: {ledger}\n" + HARD_BUDGET + "  store: redis://:notaport/x\n")
    assert send_three(fake_provider) == ["sent", "sent", "sent"]
    runtime = get_runtime()
    assert runtime.guard is None
    assert runtime.ledger is not None and runtime.ledger.flush(10)
    with open_ledger(ledger) as rows:
        assert len(list(rows.export())) == 3
    assert_metered(telemetry, sent=3, blocked=0)
    assert errors_logged(caplog) == [
        f"genai-meter: {path}: field 'store': 'redis://:notaport/x' is not a valid Redis URL: "
        "Port could not be cast to integer value as 'notaport'; budgets are off" + FALLBACK
    ]


def test_part_that_cannot_be_built_is_the_only_part_given_up(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """A pricing file that cannot be read: the bundled prices are used, and the budgets (and
    `ledger_url: off`) configured beside it stay in force."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("models: [unclosed\n", encoding="utf-8")
    launch(tmp_path, monkeypatch, f"pricing_file: {prices}\nledger_url: 'off'\n" + HARD_BUDGET)
    assert send_three(fake_provider) == ["sent", "sent", "blocked"]
    assert get_runtime().ledger is None
    assert_metered(telemetry, sent=2, blocked=1)
    [logged] = errors_logged(caplog)
    assert logged.startswith(f"genai-meter: {prices}") and logged.endswith("; the bundled prices are used" + FALLBACK)


@pytest.mark.parametrize("mark", ["#", "?", "/", " ", "%zz"])
@pytest.mark.parametrize("scheme", ["postgresql", "redis"])
def test_a_password_a_url_cannot_hold_is_never_quoted(scheme: str, mark: str) -> None:
    """`urlsplit` (and redis-py) end the host part at a `#`, `?` or `/` in the password, and their port
    error then quoted its start; libpq quoted a password with a stray `%` or a space whole."""
    url = f"{scheme}://meter:SENT{mark}tinel@127.0.0.1:5432/0"
    settings: dict[str, Any] = (
        {"ledger_url": url}
        if scheme == "postgresql"
        else {"budgets": {"store": url, "policies": [{"name": "a", "limit_usd": 1}]}}
    )
    with pytest.raises(ConfigError) as caught:
        configure(**{"ledger_url": "off", **settings})
    message = str(caught.value)
    assert "SENT" not in message and "tinel" not in message
    assert "its user name or password holds a character a URL must percent-encode" in message


def test_password_query_parameters_are_redacted() -> None:
    from genai_meter._redact import redact_url

    assert redact_url("postgresql://db/x?sslmode=require&password=SENT&user=a") == (
        "postgresql://db/x?sslmode=require&password=***&user=a"
    )
    assert redact_url("redis://127.0.0.1:6379/0?Password=SENT") == "redis://127.0.0.1:6379/0?Password=***"
    with pytest.raises(ConfigError) as caught:
        configure(ledger_url="postgresql://127.0.0.1:99999/test?password=SENT")
    assert "SENT" not in str(caught.value) and "password=***" in str(caught.value)


def test_every_secret_query_parameter_is_kept_out_of_parser_messages() -> None:
    """`redact_url` hid `sslpassword=` and `token=` values, but a parser message quoting them kept
    them (its own list of names was shorter)."""
    from genai_meter._redact import safe_parser_message

    url = "postgresql://db:5432/x?sslpassword=SENTKEY&token=SENTTOK&password=SENTPW"
    assert safe_parser_message(url, "rejected SENTKEY, SENTTOK, SENTPW") == "rejected ***, ***, ***"


def test_an_empty_pseudonymisation_key_is_an_error(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """An empty key (a secret reference that resolved to nothing) once switched pseudonymisation off
    without a word. `configure()` refuses it; under the launcher user ids leave pseudonymised all the
    same, under a key of the process's own."""
    with pytest.raises(ConfigError) as caught:
        configure(ledger_url="off", pseudonymize_users_key=" ")
    assert str(caught.value) == (
        "configure(): pseudonymize_users_key: is empty; leave it unset to keep user ids as they are"
    )
    launch(tmp_path, monkeypatch, "ledger_url: 'off'\n", GENAI_METER_PSEUDONYMIZE_USERS_KEY="")
    with genai_meter.attribute(user="alice@example.com"):
        client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                      extra_headers=usage_headers())
    user = (telemetry.only_span().attributes or {})[names.USER_ID]
    assert user != "alice@example.com" and "alice" not in str(user)
    assert errors_logged(caplog) == [
        "genai-meter: environment: GENAI_METER_PSEUDONYMIZE_USERS_KEY: is empty; leave it unset to keep user "
        "ids as they are; user ids are pseudonymised with a random key of this process until a valid key is set"
        + FALLBACK
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"label_cap": "abc"}, "configure(): label_cap: expected a whole number, got 'abc'"),
        (
            {"ledger_url": "mysql://x"},
            "configure(): ledger_url: ledger URL 'mysql://x': unknown scheme 'mysql' (use sqlite or postgresql)",
        ),
        (
            {"ledger_url": "postgresql://meter:pw@db:port/meter"},
            "configure(): ledger_url: ledger URL 'postgresql://***@db:port/meter': "
            "Port could not be cast to integer value as 'port'",
        ),
        (
            {"budgets": {"store": "redis://:notaport/x", "policies": [{"name": "a", "limit_usd": 1}]}},
            "configure(): field 'store': 'redis://:notaport/x' is not a valid Redis URL: "
            "Port could not be cast to integer value as 'notaport'",
        ),
    ],
)
def test_configure_raises_config_error_and_keeps_the_working_runtime(
    telemetry: Telemetry, settings: dict[str, Any], message: str
) -> None:
    working = get_runtime()
    with pytest.raises(ConfigError) as caught:
        configure(**{"ledger_url": "off", **settings})
    assert str(caught.value) == message
    assert get_runtime() is working


def test_lenient_loading_replaces_only_what_is_wrong(tmp_path: Path) -> None:
    """The wrong value falls back to its key's default even over an earlier source's value (the
    documented rule, one a reader can predict); the ledger URL falls back to off."""
    path = tmp_path / "genai-meter.yaml"
    path.write_text("label_cap: 500\nuser_labels: false\nledger_url: 'off'\nlabel_kap: 3\n", encoding="utf-8")
    environ = {
        "GENAI_METER_CONFIG": str(path),
        "GENAI_METER_LABEL_CAP": "abc",
        "GENAI_METER_TENANT_LABELS": "maybe",
        "GENAI_METER_MAX_SERIES_PER_METRIC": "50",
        "GENAI_METER_BUDGETS": "x",
    }
    config, errors = load_config_leniently(environ)
    assert (config.label_cap, config.user_labels, config.tenant_labels, config.max_series_per_metric) == (
        1000,
        False,
        True,
        50,
    )
    assert config.ledger_url == "off" and config.budgets is None
    assert [(error.key, error.fallback) for error in errors] == [
        (None, "the key is ignored"),
        ("budgets", "the variable is ignored"),
        ("label_cap", "label_cap falls back to its default (1000)"),
        ("tenant_labels", "tenant_labels falls back to its default (True)"),
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(environ)
    assert str(caught.value).startswith(f"{path}: unknown key label_kap (known keys: ")

    missing = {**environ, "GENAI_METER_CONFIG": str(tmp_path / "missing.yaml")}
    config, errors = load_config_leniently(missing)
    assert config.max_series_per_metric == 50  # the environment still applies
    assert (str(errors[0]), errors[0].fallback) == (
        f"{tmp_path / 'missing.yaml'}: cannot read the configuration file (No such file or directory)",
        "the file is ignored",
    )


def test_configure_that_fails_leaves_the_live_runtimes_metrics_wired(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configure() whose budgets cannot be built raises, and the runtime still in force keeps
    exporting its own ledger's counts (the new runtime's parts are wired only once all are built)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    configure(**fake_provider_settings(fake_provider, ledger_url=f"sqlite:///{tmp_path / 'live.db'}"))
    live = get_runtime()
    assert live.ledger is not None
    client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    assert live.ledger.flush(10)
    with pytest.raises(ConfigError):  # a policy that cannot be built, after the new ledger was
        configure(
            **fake_provider_settings(
                fake_provider,
                ledger_url=f"sqlite:///{tmp_path / 'other.db'}",
                budgets={"policies": [{"name": "a", "limit_usd": -1}]},
            )
        )
    assert get_runtime() is live
    assert telemetry.total(names.LEDGER_ROWS.otel_name) == 1
