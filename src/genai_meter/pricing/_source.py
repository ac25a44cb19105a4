"""Reading a price file into plain Python values plus the line each value came from.

Error messages must point at `file:line`, and neither `yaml.safe_load` nor `json.loads` keeps
positions. So YAML is composed into nodes and converted by hand, recording each node's line under
its path; JSON is parsed by `json` (whose syntax errors carry a line) and then, for positions only,
composed by the YAML parser, which reads JSON too. If that second pass fails, errors simply come
without a line. A key given twice in one object is an error in both (`json` alone would keep the last).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from .. import _yaml

PathKey = tuple[str | int, ...]
Lines = dict[PathKey, int]


class PricingError(ValueError):
    """A price file (bundled or user overrides) is unreadable or invalid.

    The message names the file, the line where it is known, the field path and the bad value, e.g.
    `prices.yaml:12: models.my-model.input: expected a number >= 0, got 'abc'`.
    """


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class Located:
    """A parsed document with the line of each value, used to build error messages."""

    __slots__ = ("data", "file", "lines")

    def __init__(self, data: Any, file: str, lines: Lines) -> None:
        self.data = data
        self.file = file
        self.lines = lines

    def line_of(self, path: PathKey) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one (a missing key's parent)."""
        while True:
            line = self.lines.get(path)
            if line is not None or not path:
                return line
            path = path[:-1]

    def error(self, path: PathKey, message: str) -> PricingError:
        line = self.line_of(path)
        where = f"{self.file}:{line}" if line is not None else self.file
        field = format_path(path)
        return PricingError(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def read_document(path: str | os.PathLike[str]) -> tuple[Located, bytes]:
    """Read and parse a YAML or JSON file (chosen by extension); returns the document and raw bytes."""
    file = os.fspath(path)
    try:
        raw = Path(file).read_bytes()
    except OSError as exc:
        raise PricingError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PricingError(f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if file.lower().endswith(".json"):
        return parse_json(text, file), raw
    return parse_yaml(text, file), raw


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`' object hook: a key given twice is an error, as in YAML (json keeps the last)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def parse_json(text: str, file: str, with_lines: bool = True) -> Located:
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise PricingError(f"{file}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise PricingError(f"{file}: nested too deeply") from None
    except _DuplicateKey as exc:
        try:  # the YAML composer reads JSON too, and names the line and path of a duplicate key
            _compose(text, file, {})
        except PricingError as located:
            if str(located).endswith(": duplicate key"):
                raise located from None
        except (yaml.YAMLError, RecursionError):
            pass
        raise PricingError(f"{file}: duplicate key {exc.key!r}") from None
    lines: Lines = {}
    if with_lines:
        try:
            _compose(text, file, lines)
        except (PricingError, yaml.YAMLError, RecursionError):
            lines = {}
    return Located(data, file, lines)


def parse_yaml(text: str, file: str) -> Located:
    lines: Lines = {}
    data = _compose(text, file, lines)
    return Located(data, file, lines)


def _compose(text: str, file: str, lines: Lines) -> Any:
    try:
        loader = _yaml.Loader(text)  # integers in plain decimal only: 0755 is not 493
    except yaml.YAMLError as exc:  # e.g. a control character, found when the reader starts
        raise PricingError(f"{file}: invalid YAML: {exc}") from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = exc.problem or exc.context or "syntax error"
            raise PricingError(f"{file}{line}: invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise PricingError(f"{file}: invalid YAML: {exc}") from None
        if node is None:
            return None
        return _convert(loader, node, (), file, lines)
    except RecursionError:
        raise PricingError(f"{file}: nested too deeply (or refers to itself)") from None
    finally:
        loader.dispose()


def _convert(loader: _yaml.Loader, node: yaml.Node, path: PathKey, file: str, lines: Lines) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise PricingError(
                    f"{file}:{key_node.start_mark.line + 1}: {format_path(path) or '(top level)'}: "
                    "keys must be plain strings"
                )
            key = str(key_node.value)
            if key in out:
                raise PricingError(
                    f"{file}:{key_node.start_mark.line + 1}: {format_path((*path, key))}: duplicate key"
                )
            out[key] = _convert(loader, value_node, (*path, key), file, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), file, lines) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError):
        return str(node.value)  # e.g. an impossible date: let the validator name the field
