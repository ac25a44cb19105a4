"""User overrides: custom and fine-tuned models, discounts, deployments, $0 local models, and errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from genai_meter._usage import Usage
from genai_meter.pricing import PriceBook, PricingError

from .conftest import at

Write = Callable[..., Path]
NOW = at("2026-11-20")
USAGE = Usage(input_tokens=1000, output_tokens=1000)


def total(book: PriceBook, provider: str, model: str, usage: Usage = USAGE) -> float | None:
    pricing = book.resolve(provider, model)
    return None if pricing is None else pricing.cost(usage, NOW).total_usd


def test_local_model_at_zero_is_priced_unknown_is_not(write: Write) -> None:
    book = PriceBook.load(write("models:\n  - {provider: ollama, model: llama3, input: 0, output: 0}\n"))
    pricing = book.resolve("ollama", "llama3")
    assert pricing is not None
    cost = pricing.cost(USAGE, NOW)
    assert (cost.total_usd, cost.input_usd, cost.output_usd, cost.model) == (0.0, 0.0, 0.0, "llama3")
    assert book.resolve("ollama", "llama3:latest") is pricing
    assert book.resolve("ollama", "llama3:70b") is None  # another size: give it its own entry or alias
    assert book.resolve("ollama", "mistral") is None


def test_custom_model_mapping_form_and_aliases(write: Write) -> None:
    book = PriceBook.load(
        write(
            """
models:
  my-model:
    provider: openai
    aliases: [my-model-v2]
    input: 0.5
    cache_read: 0.25
    output: 1.5
"""
        )
    )
    usage = Usage(input_tokens=2000, cache_read_tokens=1000, output_tokens=1000)
    assert total(book, "openai", "my-model", usage) == pytest.approx(0.0005 + 0.00025 + 0.0015, abs=1e-9)
    assert total(book, "openai", "My-Model-V2", usage) == pytest.approx(0.00225, abs=1e-9)
    assert total(book, "azure.ai.openai", "my-model", usage) == pytest.approx(
        0.00225, abs=1e-9
    )  # via fallback


def test_fine_tune_uses_bundled_ft_prices_or_needs_an_override(write: Write) -> None:
    bundled = PriceBook.load()
    assert total(bundled, "openai", "ft:gpt-4o-mini-2024-07-18:acme::abc") == pytest.approx(0.0003 + 0.0012)
    assert bundled.resolve("openai", "ft:gpt-5-mini-2025-08-07:acme::x") is None
    book = PriceBook.load(
        write("models:\n  ft:gpt-5-mini-2025-08-07:acme::x: {provider: openai, input: 0.5, output: 4}\n")
    )
    assert total(book, "openai", "ft:gpt-5-mini-2025-08-07:acme::x") == pytest.approx(0.0045, abs=1e-9)
    assert book.resolve("openai", "ft:gpt-5-mini-2025-08-07:acme::other") is None


def test_override_replaces_a_bundled_model_with_its_aliases(write: Write) -> None:
    book = PriceBook.load(write("models:\n  gpt-4o: {provider: openai, input: 1, output: 2}\n"))
    assert total(book, "openai", "gpt-4o") == pytest.approx(0.003, abs=1e-9)
    assert total(book, "openai", "gpt-4o-2024-11-20") == pytest.approx(0.003, abs=1e-9)  # bundled alias
    assert total(book, "openai", "gpt-4o-2024-05-13") == pytest.approx(0.02, abs=1e-9)  # its own entry stays
    assert len([m for m in book.models() if (m.provider, m.model) == ("openai", "gpt-4o")]) == 1


def test_discounts_provider_wide_and_per_model(write: Write) -> None:
    book = PriceBook.load(
        write(
            """
discounts:
  openai: 0.8
  anthropic: {all: 0.9, models: {claude-sonnet-4-5: 0.5}}
"""
        )
    )
    assert total(book, "openai", "gpt-4o") == pytest.approx(0.8 * 0.0125, abs=1e-9)
    assert total(book, "azure.ai.openai", "gpt-4o") == pytest.approx(0.0125, abs=1e-9)  # billed by Azure
    assert total(book, "anthropic", "claude-3-5-sonnet") == pytest.approx(0.9 * 0.018, abs=1e-9)
    assert total(book, "anthropic", "claude-sonnet-4-5-20250929") == pytest.approx(0.5 * 0.018, abs=1e-9)
    pricing = book.resolve("openai", "gpt-4o")
    assert pricing is not None and pricing.discount == 0.8


def test_overrides_and_discounts_under_an_older_provider_spelling_apply(write: Write) -> None:
    book = PriceBook.load(
        write(
            """
models:
  grok-3: {provider: xai, input: 0.5, output: 1}
  my-phi: {provider: azure, input: 1, output: 2}
discounts:
  mistral: 0.5
  bedrock: {models: {amazon.nova-pro-v1:0: 0.25}}
"""
        )
    )
    assert total(book, "x_ai", "grok-3") == pytest.approx(0.0015, abs=1e-9)  # bundled: 0.018
    assert total(book, "xai", "grok-3") == pytest.approx(0.0015, abs=1e-9)
    assert total(book, "azure.ai.openai", "my-phi") == pytest.approx(0.003, abs=1e-9)
    assert total(book, "mistral_ai", "mistral-large") == pytest.approx(0.5 * 0.008, abs=1e-9)
    assert total(book, "aws.bedrock", "amazon.nova-pro-v1:0") == pytest.approx(0.25 * 0.004, abs=1e-9)
    assert [m.provider for m in book.models() if m.model == "grok-3"] == ["x_ai"]


def test_one_provider_under_two_spellings_is_given_twice(write: Write) -> None:
    with pytest.raises(PricingError, match=r"model 'grok-3' of provider 'x_ai' is given twice"):
        PriceBook.load(
            write(
                "models:\n  - {provider: xai, model: grok-3, input: 1}\n"
                "  - {provider: x_ai, model: grok-3, input: 2}\n"
            )
        )
    with pytest.raises(PricingError, match=r"prices\.yaml:3: discounts\.mistral_ai: .* given twice"):
        PriceBook.load(write("discounts:\n  mistral: 0.5\n  mistral_ai: 0.8\n"))


def test_azure_deployments(write: Write) -> None:
    book = PriceBook.load(write("deployments:\n  my-gpt4o-deploy: gpt-4o\n  Prod-Mini: gpt-4o-mini\n"))
    pricing = book.resolve("azure.ai.openai", "my-gpt4o-deploy")
    assert pricing is not None and pricing.model == "gpt-4o"
    assert total(book, "azure.ai.openai", "prod-mini") == pytest.approx(0.00075, abs=1e-9)
    assert PriceBook.load().resolve("azure.ai.openai", "my-gpt4o-deploy") is None


def test_json_overrides_and_version(write: Write) -> None:
    text = '{"models": {"acme": {"provider": "acme", "input": 1, "output": 1}}}'
    path = write(text, "prices.json")
    book = PriceBook.load(path)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    assert book.version == f"{PriceBook.load().version}+overrides:{digest}"
    pricing = book.resolve("acme", "acme")
    assert pricing is not None and pricing.cost(USAGE, NOW).pricing_version == book.version


def test_empty_overrides_file_is_fine(write: Write) -> None:
    assert PriceBook.load(write("# nothing yet\n")).resolve("openai", "gpt-4o") is not None


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  my-model:\n    provider: openai\n    input: abc\n",
            r"prices\.yaml:4: models\.my-model\.input: expected a number >= 0, got 'abc'$",
        ),
        (
            "models:\n  my-model:\n    provider: openai\n    input: 1\n    cache_reed: 0.1\n",
            r"prices\.yaml:5: models\.my-model\.cache_reed: unknown key",
        ),
        (
            "models:\n  my-model:\n    provider: openai\n    output: 1\n",
            r"prices\.yaml:3: models\.my-model: missing required key 'input'",
        ),
        (
            "models:\n  my-model:\n    input: 1\n",
            r"prices\.yaml:3: models\.my-model: missing required key 'provider'",
        ),
        (
            "models:\n  m: {provider: x, input: -2}\n",
            r"prices\.yaml:2: models\.m\.input: expected a number >= 0, got -2",
        ),
        (
            "models:\n  m: {provider: x, input: yes}\n",
            r"prices\.yaml:2: models\.m\.input: expected a number >= 0, got True",
        ),
        (
            "models:\n  - provider: x\n    model: m\n    input: 1\n    tiers:\n"
            "      - {above_input_tokens: 200, input: 2}\n      - {above_input_tokens: 100, input: 3}\n",
            r"prices\.yaml:7: models\[0\]\.tiers\[1\]\.above_input_tokens: tiers must be in increasing order",
        ),
        (
            "models:\n  m:\n    provider: x\n    periods:\n      - {input: 1}\n"
            "      - {from: 2025-06-01, input: 2}\n      - {from: 2025-01-01, input: 3}\n",
            r"prices\.yaml:7: models\.m\.periods\[2\]\.from: periods must be in increasing date order",
        ),
        (
            "models:\n  m:\n    provider: x\n    periods:\n      - {input: 1}\n      - {input: 2}\n",
            r"prices\.yaml:6: models\.m\.periods\[1\]: missing required key 'from'",
        ),
        (
            "models:\n  m:\n    provider: x\n    periods:\n      - {from: 2025-13-01, input: 1}\n",
            r"prices\.yaml:5: models\.m\.periods\[0\]\.from: expected a date YYYY-MM-DD, got '2025-13-01'",
        ),
        (
            "models:\n  m: {provider: x, input: 1, service_tiers: {batch: {multiplier: 0.5, input: 1}}}\n",
            r"prices\.yaml:2: models\.m\.service_tiers\.batch: give either 'multiplier' or prices, not both",
        ),
        (
            "discounts:\n  openai: -0.5\n",
            r"prices\.yaml:2: discounts\.openai: expected a number >= 0, got -0\.5",
        ),
        (
            "discounts:\n  openai: {everything: 0.5}\n",
            r"prices\.yaml:2: discounts\.openai\.everything: unknown key",
        ),
        (
            "deployments:\n  my-deploy: 12\n",
            r"prices\.yaml:2: deployments\.my-deploy: expected a model id, got 12",
        ),
        ("modles: {}\n", r"prices\.yaml:1: modles: unknown key"),
        (
            "models:\n  m: {provider: x, input: 1}\n  m: {provider: x, input: 2}\n",
            r"prices\.yaml:3: models\.m: duplicate key",
        ),
        ("models: [\n", r"prices\.yaml:2: invalid YAML"),
        ("version: 2\n", r"prices\.yaml:1: version: unsupported format version 2"),
        (
            "models:\n  - {provider: x, model: m, input: 1}\n  - {provider: x, model: M, input: 2}\n",
            r"prices\.yaml:3: models\[1\]: model 'm' of provider 'x' is given twice",
        ),
    ],
)
def test_yaml_errors_name_file_line_and_field(write: Write, text: str, message: str) -> None:
    with pytest.raises(PricingError, match=message):
        PriceBook.load(write(text))


def test_json_syntax_error_has_a_line(write: Write) -> None:
    with pytest.raises(PricingError, match=r"prices\.json:3: invalid JSON: "):
        PriceBook.load(write('{\n "models": {\n  "m": {"provider": "x" "input": 1}}}\n', "prices.json"))


def test_json_validation_error_has_a_line(write: Write) -> None:
    text = '{\n "models": {\n  "m": {\n   "provider": "x",\n   "input": "abc"\n  }\n }\n}\n'
    with pytest.raises(
        PricingError, match=r"prices\.json:5: models\.m\.input: expected a number >= 0, got 'abc'"
    ):
        PriceBook.load(write(text, "prices.json"))


def test_json_duplicate_key_is_an_error_as_in_yaml(write: Write) -> None:
    # json.loads alone keeps the last value: this file would have priced m at $2 without a word.
    text = '{"models": {\n "m": {"provider": "openai", "input": 1},\n "m": {"provider": "openai", "input": 2}}}\n'
    with pytest.raises(PricingError, match=r"^.*prices\.json:3: models\.m: duplicate key$"):
        PriceBook.load(write(text, "prices.json"))
    with pytest.raises(PricingError, match=r"prices\.json:1: models\.m\.input: duplicate key"):
        PriceBook.load(write('{"models": {"m": {"provider": "openai", "input": 1, "input": 2}}}', "prices.json"))
    # JSON the YAML composer cannot read (a tab before a key): the key is still named, without a line.
    with pytest.raises(PricingError, match=r"prices\.json: duplicate key 'version'$"):
        PriceBook.load(write('{"version": 1,\n\t"version": 1}', "prices.json"))
    book = PriceBook.load(write('{"models": {"m": {"provider": "openai", "input": 2}}}', "prices.json"))
    assert total(book, "openai", "m") == pytest.approx(0.002, abs=1e-9)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match=r"nope\.yaml: cannot read: No such file or directory"):
        PriceBook.load(tmp_path / "nope.yaml")


def test_error_is_a_value_error(write: Write) -> None:
    with pytest.raises(ValueError):
        PriceBook.load(write("models: 3\n"))


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("OPENAI_API_KEY=sk-live-abc\nDB_PASSWORD=hunter2\n", "got text"),
        ("OPENAI_API_KEY=sk-live-abc\n", "got text"),
        ("- OPENAI_API_KEY=sk-live-abc\n", "got a list"),
        ("models:\n  m: {provider: acme, input: 'OPENAI_API_KEY=sk-live-abcdefghijklmnopqrstu', output: 1}\n",
         "got text of 44 characters"),
    ],
)
def test_a_wrong_file_is_not_quoted(write: Write, text: str, got: str) -> None:
    """A `.env` given as the pricing file by mistake: its content (secrets) was quoted in the error,
    which the launcher logs."""
    with pytest.raises(PricingError) as caught:
        PriceBook.load(write(text))
    message = str(caught.value)
    assert got in message
    assert "sk-live" not in message and "hunter2" not in message
