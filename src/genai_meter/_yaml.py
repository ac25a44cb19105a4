"""The project's YAML loader: PyYAML's safe loader, with integers read only in plain decimal.

PyYAML implements YAML 1.1, where `00042` and `0755` are octal (34, 493), `12:30` is base 60 (750),
`0x1f` hexadecimal, `1_000` a thousand and `+5` five. In a configuration those are identifiers far
more often than numbers: a budget policy `match: {tenant: 00042}` read as tenant "34" guards the wrong
tenant without a word. `Loader` reads an unquoted scalar as an integer only when it is a canonical
decimal (`-?(0|[1-9][0-9]*)`) and keeps every other integer-looking form as the text written; a field
that wants a number then rejects that text with an error instead of a guess. Everything else (floats,
booleans, null, dates) is read as the safe loader reads it.

Use `safe_load` (or `Loader` itself, e.g. to compose nodes) wherever the project reads YAML it did not
write.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml

_INT_TAG = "tag:yaml.org,2002:int"
_DECIMAL_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
# What YAML 1.1 (PyYAML's SafeLoader) reads as an integer: binary, octal, decimal with `_`, hex, base 60.
_YAML11_INT = next(regexp for tag, regexp in yaml.SafeLoader.yaml_implicit_resolvers["0"] if tag == _INT_TAG)


class Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` whose integers are canonical decimals only (other forms stay text)."""


# The safe loader's resolvers, in their order, with the integer one's pattern replaced.
Loader.yaml_implicit_resolvers = {
    first: [(tag, _DECIMAL_INT if tag == _INT_TAG else regexp) for tag, regexp in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """`yaml.safe_load` with `Loader`: `00042`, `0755`, `12:30`, `0x1f`, `1_000` and `+5` stay text."""
    return yaml.load(stream, Loader=Loader)


def is_yaml11_int_text(value: Any) -> bool:
    """Whether `value` is text that YAML 1.1 would have read as an integer (and `Loader` kept as text):
    a number field given one gets an error naming it instead of a silent octal or base-60 reading."""
    return isinstance(value, str) and bool(_YAML11_INT.match(value)) and not _DECIMAL_INT.match(value)
