"""Configuration in one place: defaults, then the YAML file named by `GENAI_METER_CONFIG`, then
`GENAI_METER_*` environment variables, then keyword arguments to `genai_meter.configure()`.

Every key is declared once in `_FIELDS` with its type, so each source is parsed the same way and a
wrong key or value is an error that names the source and the key (a typo silently ignored is a budget
silently not enforced). `load_config` raises it; `load_config_leniently`, for auto-configuration
under the launcher, sets only the wrong key back to its default and returns the error to be logged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

from . import _yaml

ENV_PREFIX = "GENAI_METER_"
CONFIG_FILE_ENV = "GENAI_METER_CONFIG"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the source and the key.

    `key` is the configuration key at fault (None for a whole file); `fallback` says what
    `load_config_leniently` used instead.
    """

    def __init__(self, message: str, *, key: str | None = None, fallback: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.fallback = fallback


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
        return self.ledger_url is None or not _is_off(self.ledger_url)


_OFF = ("off", "none", "false", "")


def _is_off(text: str) -> bool:
    return text.strip().lower() in _OFF


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


def _parse_secret(value: Any) -> str | None:
    """Like `_parse_optional_str`, but an error never repeats the value (it is a key). An empty key is
    a mistake (a secret reference that resolved to nothing), not a request to switch the key off:
    taken as none, every raw user id would leave the process without a word."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got a value of type {type(value).__name__}")
    if not value.strip():
        raise ValueError("is empty; leave it unset to keep user ids as they are")
    return value


def _parse_ledger_url(value: Any) -> str | None:
    """`off`, or a URL the ledger can open. Checked here, with the ledger's own parser, so that a
    mistake is an error naming the key rather than a writer that cannot be built with the runtime."""
    text = _parse_optional_str(value)
    if text is None or _is_off(text):
        return text
    from .ledger import LedgerURLError, parse_ledger_url

    try:
        parse_ledger_url(text)
    except LedgerURLError as error:
        raise ValueError(str(error)) from None
    return text


def _parse_str(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"expected non-empty text, got {value!r}")


def _parse_pairs(value: Any) -> dict[str, str]:
    """A mapping, or `key=value,key=value` text from an environment variable."""
    if isinstance(value, Mapping):
        for key, val in value.items():
            if not isinstance(val, str | int | float):  # (None, a list: str() would make "None" a value)
                raise ValueError(f"{key}: expected a value, got {val!r}")
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
    "pseudonymize_users_key": _parse_secret,
    "ledger_url": _parse_ledger_url,
    "ledger_metadata_keys": _parse_str_tuple,
    "prometheus_port": _parse_port,
    "prometheus_host": _parse_str,
    "exporter_delegate": _parse_optional_str,
    "budgets": _parse_section,
}
# Keys that only the YAML file can hold (structured sections).
_FILE_ONLY = {"budgets"}
assert set(_FIELDS) == {f.name for f in fields(Config)} - {"source"}
# Under the launcher a wrong value falls back to its key's default, except where the default would do
# what the user did not ask for: a ledger URL that cannot be used turns the ledger off rather than
# writing the ledger to the default file.
_INSTEAD_OF_INVALID: dict[str, tuple[Any, str]] = {
    "ledger_url": ("off", "the ledger is off"),
    # Fails closed: user ids were meant to leave the process pseudonymised, so they still do, under a
    # key of this process's own (comparable within it, not across processes or restarts).
    "pseudonymize_users_key": (
        secrets.token_hex(32),
        "user ids are pseudonymised with a random key of this process until a valid key is set",
    ),
}


def _fail(errors: list[ConfigError] | None, error: ConfigError) -> None:
    """Raise `error` (`load_config`), or keep it for the caller to log (`load_config_leniently`)."""
    if errors is None:
        raise error
    errors.append(error)


def _instead_of_invalid(key: str) -> tuple[Any, str]:
    """The value a wrong value of `key` is replaced with under the launcher, and how to say so."""
    if key in _INSTEAD_OF_INVALID:
        return _INSTEAD_OF_INVALID[key]
    value = getattr(Config(), key)
    return value, f"{key} falls back to its default ({'none' if value is None else repr(value)})"


def _apply(
    config: Config,
    values: Mapping[str, Any],
    source: str,
    describe: Callable[[str], str],
    errors: list[ConfigError] | None,
) -> Config:
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        parser = _FIELDS.get(key)
        if parser is None:
            known = ", ".join(sorted(_FIELDS))
            message = f"{source}: unknown key {describe(key)} (known keys: {known})"
            _fail(errors, ConfigError(message, fallback="the key is ignored"))
            continue
        try:
            changes[key] = parser(raw)
            continue
        except ValueError as error:
            message = f"{source}: {describe(key)}: {error}"
        changes[key], fallback = _instead_of_invalid(key)
        _fail(errors, ConfigError(message, key=key, fallback=fallback))
    return replace(config, source=source, **changes) if changes else config


def _from_file(config: Config, path: str, errors: list[ConfigError] | None) -> Config:
    ignored = "the file is ignored"
    try:
        with open(path, encoding="utf-8") as handle:
            data = _yaml.safe_load(handle)  # 00042, 0755, 12:30 stay text, not YAML 1.1 numbers
    except OSError as error:
        message = f"{path}: cannot read the configuration file ({error.strerror})"
    except UnicodeDecodeError:
        message = f"{path}: not UTF-8 text"
    except RecursionError:
        message = f"{path}: nested too deeply"
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        message = f"{where}: not valid YAML ({getattr(error, 'problem', error)})"
    else:
        if data is None:
            return config
        if isinstance(data, Mapping):
            return _apply(config, _without_yaml11_numbers(data, path, errors), path, lambda key: key, errors)
        message = f"{path}: expected a mapping of keys at the top level"
    _fail(errors, ConfigError(message, fallback=ignored))
    return config


_NUMBER_PARSERS = (_parse_int, _parse_positive_int, _parse_port)


def _without_yaml11_numbers(data: Mapping[str, Any], path: str, errors: list[ConfigError] | None) -> Mapping[str, Any]:
    """A number key given a YAML 1.1 integer form (`0755`, `12:30`, `0x1f`, `1_000`, `+5`) is an error:
    the loader keeps those as text, which `_parse_int` would otherwise read as a plain decimal (755)."""
    bad = [
        key for key, value in data.items() if _FIELDS.get(key) in _NUMBER_PARSERS and _yaml.is_yaml11_int_text(value)
    ]
    for key in bad:
        message = (
            f"{path}: {key}: expected a plain decimal number, got {data[key]!r} (which YAML 1.1 reads as "
            f"{yaml.safe_load(data[key])}); write it without leading zeros, colons, underscores or a sign"
        )
        _fail(errors, ConfigError(message, key=key, fallback=_instead_of_invalid(key)[1]))
    return {key: value for key, value in data.items() if key not in bad} if bad else data


# The values opentelemetry-util-genai gives the shared variable besides true/false: genai-meter puts
# content on spans only, so the modes that put it on spans turn capture on.
_CAPTURE_MODES = {"span_only": "true", "span_and_event": "true", "no_content": "false", "event_only": "false"}


def _from_env(config: Config, environ: Mapping[str, str], errors: list[ConfigError] | None) -> Config:
    if CAPTURE_CONTENT_ENV in environ:  # (shared with the OTel GenAI instrumentations: named as it is)
        raw = environ[CAPTURE_CONTENT_ENV]
        shared = {"capture_content": _CAPTURE_MODES.get(raw.strip().lower(), raw)}
        config = _apply(config, shared, "environment", lambda _key: CAPTURE_CONTENT_ENV, errors)
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in _FILE_ONLY:
            message = f"environment: {name} can only be set in the configuration file"
            _fail(errors, ConfigError(message, key=key, fallback="the variable is ignored"))
            continue
        values[key] = raw
    return _apply(config, values, "environment", lambda key: ENV_PREFIX + key.upper(), errors)


def _load(environ: Mapping[str, str] | None, overrides: Mapping[str, Any], errors: list[ConfigError] | None) -> Config:
    env = os.environ if environ is None else environ
    config = Config()
    path = env.get(CONFIG_FILE_ENV)
    if path:
        config = _from_file(config, path, errors)
    config = _from_env(config, env, errors)
    if overrides:
        config = _apply(config, overrides, "configure()", lambda key: key, errors)
    return config


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Build the effective configuration from every source; raises ConfigError naming the bad key."""
    return _load(environ, overrides, None)


def load_config_leniently(environ: Mapping[str, str] | None = None) -> tuple[Config, list[ConfigError]]:
    """The configuration from the file and the environment, for auto-configuration under the launcher,
    where nobody is there to catch an error: a wrong value is replaced as its error's `fallback` says
    (its key's default; `off` for the ledger URL), an unknown key or an unreadable file is ignored,
    and every other key keeps its configured value. Returns the errors for the caller to log."""
    errors: list[ConfigError] = []
    return _load(environ, {}, errors), errors
