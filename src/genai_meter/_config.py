"""Configuration in one place: defaults, then the YAML file named by `GENAI_METER_CONFIG`, then
`GENAI_METER_*` environment variables, then keyword arguments to `genai_meter.configure()`.

Every key is declared once in `_FIELDS` with its type, so each source is parsed the same way and a
wrong key or value is an error that names the source and the key (a typo silently ignored is a budget
silently not enforced).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

ENV_PREFIX = "GENAI_METER_"
CONFIG_FILE_ENV = "GENAI_METER_CONFIG"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the source and the key."""


@dataclass(frozen=True)
class Config:
    """The effective configuration; see docs/configuration.md for each key."""

    pricing_file: str | None = None
    capture_content: bool = False
    user_labels: bool = True
    tenant_labels: bool = True
    label_cap: int = 1000
    max_series_per_metric: int = 1900
    inject_stream_usage: Mapping[str, bool] = field(default_factory=lambda: {"api.openai.com": True})
    inject_stream_usage_default: bool = False
    provider_hosts: Mapping[str, str] = field(default_factory=dict)
    emit_semconv_cost: bool = False
    pseudonymize_users_key: str | None = None
    ledger_url: str | None = None
    ledger_metadata_keys: tuple[str, ...] = ()
    prometheus_port: int | None = None
    prometheus_host: str = "127.0.0.1"
    exporter_delegate: str | None = None
    budgets: Mapping[str, Any] | None = None
    source: str = "<defaults>"

    @property
    def ledger_enabled(self) -> bool:
        """On by default (SQLite under the user's data folder); `off` turns it off."""
        return self.ledger_url is None or self.ledger_url.strip().lower() not in ("off", "none", "false", "")


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"expected a whole number, got {value!r}")


def _parse_positive_int(value: Any) -> int:
    number = _parse_int(value)
    if number < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _parse_port(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    number = _parse_int(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {value!r}")
    return number


def _parse_optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise ValueError(f"expected text, got {value!r}")


def _parse_str(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"expected non-empty text, got {value!r}")


def _parse_pairs(value: Any) -> dict[str, str]:
    """A mapping, or `key=value,key=value` text from an environment variable."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"expected key=value pairs separated by commas, got {item!r}")
            pairs[key.strip()] = val.strip()
        return pairs
    raise ValueError(f"expected a mapping, got {value!r}")


def _parse_bool_map(value: Any) -> dict[str, bool]:
    return {key: _parse_bool(val) for key, val in _parse_pairs(value).items()}


def _parse_str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(filter(None, (part.strip() for part in value.split(","))))
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(f"expected a list of text, got {value!r}")


def _parse_section(value: Any) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise ValueError(f"expected a mapping, got {type(value).__name__}")


_FIELDS: dict[str, Callable[[Any], Any]] = {
    "pricing_file": _parse_optional_str,
    "capture_content": _parse_bool,
    "user_labels": _parse_bool,
    "tenant_labels": _parse_bool,
    "label_cap": _parse_positive_int,
    "max_series_per_metric": _parse_positive_int,
    "inject_stream_usage": _parse_bool_map,
    "inject_stream_usage_default": _parse_bool,
    "provider_hosts": _parse_pairs,
    "emit_semconv_cost": _parse_bool,
    "pseudonymize_users_key": _parse_optional_str,
    "ledger_url": _parse_optional_str,
    "ledger_metadata_keys": _parse_str_tuple,
    "prometheus_port": _parse_port,
    "prometheus_host": _parse_str,
    "exporter_delegate": _parse_optional_str,
    "budgets": _parse_section,
}
# Keys that only the YAML file can hold (structured sections).
_FILE_ONLY = {"budgets"}
assert set(_FIELDS) == {f.name for f in fields(Config)} - {"source"}


def _apply(config: Config, values: Mapping[str, Any], source: str, describe: Callable[[str], str]) -> Config:
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        parser = _FIELDS.get(key)
        if parser is None:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(f"{source}: unknown key {describe(key)} (known keys: {known})")
        try:
            changes[key] = parser(raw)
        except ValueError as error:
            raise ConfigError(f"{source}: {describe(key)}: {error}") from None
    return replace(config, source=source, **changes) if changes else config


def _from_file(config: Config, path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ConfigError(f"{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if data is None:
        return config
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return _apply(config, data, path, lambda key: key)


def _from_env(config: Config, environ: Mapping[str, str]) -> Config:
    values: dict[str, Any] = {}
    if CAPTURE_CONTENT_ENV in environ:
        values["capture_content"] = environ[CAPTURE_CONTENT_ENV]
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in _FILE_ONLY:
            raise ConfigError(f"environment: {name} can only be set in the configuration file")
        values[key] = raw
    return _apply(config, values, "environment", lambda key: ENV_PREFIX + key.upper())


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Build the effective configuration from every source; raises ConfigError naming the bad key."""
    env = os.environ if environ is None else environ
    config = Config()
    path = env.get(CONFIG_FILE_ENV)
    if path:
        config = _from_file(config, path)
    config = _from_env(config, env)
    if overrides:
        config = _apply(config, overrides, "configure()", lambda key: key)
    return config
