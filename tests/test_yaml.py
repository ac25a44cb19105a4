"""The project YAML loader: integers in plain decimal only, so ids such as `00042` stay what was written."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
import yaml

from genai_meter import _yaml
from genai_meter._config import ConfigError, load_config, load_config_leniently
from genai_meter.budgets import parse_budget_config
from genai_meter.budgets._guard import _Policy
from genai_meter.pricing import PriceBook, PricingError


def test_only_canonical_decimal_integers_are_numbers() -> None:
    text = (
        "a: 00042\nb: 0755\nc: 12:30\nd: 0x1F\ne: 1_000\nf: +5\ng: 0b11\n"
        "h: 42\ni: -3\nj: 0\nk: 1.5\nl: 2026-06-01\nm: yes\nn: null\no: '0755'\n"
    )
    assert _yaml.safe_load(text) == {
        "a": "00042", "b": "0755", "c": "12:30", "d": "0x1F", "e": "1_000", "f": "+5", "g": "0b11",
        "h": 42, "i": -3, "j": 0, "k": 1.5, "l": datetime.date(2026, 6, 1), "m": True, "n": None, "o": "0755",
    }
    assert yaml.safe_load("a: 00042")["a"] == 34  # PyYAML's own loader is left as it is


def test_yaml11_int_text() -> None:
    assert all(map(_yaml.is_yaml11_int_text, ["00042", "0755", "12:30", "0x1F", "1_000", "+5", "0b11"]))
    assert not any(map(_yaml.is_yaml11_int_text, ["42", "-3", "0", "abc", "1.5", "0o17", 42]))


def _config_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "genai-meter.yaml"
    path.write_text(text, encoding="utf-8")
    return {"GENAI_METER_CONFIG": str(path)}


def test_budget_match_on_a_zero_padded_tenant(tmp_path: Path) -> None:
    environ = _config_file(
        tmp_path,
        "budgets:\n  policies:\n    - {name: t42, scope: [tenant], match: {tenant: 00042}, limit_usd: 5}\n"
        "    - {name: short, scope: [tenant], match: 0755, limit_usd: 1}\n",
    )
    config = load_config(environ)
    policies = parse_budget_config(config.budgets, config.source).policies
    assert [p.match for p in policies] == [(("tenant", "00042"),), (("tenant", "0755"),)]
    guard_policy = _Policy(policies[0], 0, None)
    assert guard_policy.scope_value({"tenant": "00042", "user": None, "feature": None}) == "00042"
    assert guard_policy.scope_value({"tenant": "34", "user": None, "feature": None}) is None


@pytest.mark.parametrize(
    ("value", "yaml11"), [("0755", 493), ("12:30", 750), ("0x1F", 31), ("1_000", 1000), ("+5", 5)]
)
def test_number_field_in_a_yaml11_form_is_an_error(tmp_path: Path, value: str, yaml11: int) -> None:
    environ = _config_file(tmp_path, f"label_cap: {value}\nuser_labels: false\n")
    expected = f"label_cap: expected a plain decimal number, got '{value}' (which YAML 1.1 reads as {yaml11})"
    with pytest.raises(ConfigError, match=re.escape(expected)) as info:
        load_config(environ)
    assert info.value.key == "label_cap"
    config, errors = load_config_leniently(environ)
    assert (config.label_cap, config.user_labels) == (1000, False)  # the default; the rest still applies
    assert [error.key for error in errors] == ["label_cap"]


def test_number_field_in_plain_decimal(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path, "label_cap: 755\nprometheus_port: 9464\npricing_file: '0755'\n"))
    assert (config.label_cap, config.prometheus_port, config.pricing_file) == (755, 9464, "0755")


def test_pricing_overrides_read_integers_in_plain_decimal(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  m: {provider: acme, input: 1, output: 2, tiers: [{above_input_tokens: 0755, input: 9}]}\n",
        encoding="utf-8",
    )
    expected = r"prices\.yaml:2: .*above_input_tokens: expected a whole number > 0, got '0755'"
    with pytest.raises(PricingError, match=expected):
        PriceBook.load(path)
    path.write_text("models:\n  00042: {provider: acme, input: 1, output: 2}\n", encoding="utf-8")
    pricing = PriceBook.load(path).resolve("acme", "00042")
    assert pricing is not None and pricing.model == "00042"
