"""`genai-meter budgets`: status of budgets, the block list, and checking a policy file.

It reads the same configuration file as the app (`--config FILE` or `GENAI_METER_CONFIG`) and talks
to the same spend store, so it sees what every process of the app has spent (with a SQLite or Redis
store; the in-memory store lives inside each app process and is invisible from here). With the app's
`pseudonymize_users_key` (from that file or `GENAI_METER_PSEUDONYMIZE_USERS_KEY`) a user is given
here by their own id and pseudonymised as the app's calls are, so only the pseudonym is stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import yaml

from genai_meter import _yaml
from genai_meter._attribution import Pseudonymizer
from genai_meter._config import CONFIG_FILE_ENV as _CONFIG_ENV
from genai_meter._config import load_config_leniently
from genai_meter._redact import redact_url
from genai_meter.budgets import (
    BudgetConfig,
    BudgetGuard,
    BudgetPolicyError,
    BudgetStatus,
    parse_budget_config,
)

_PSEUDONYMISED_NOTE = "note: user ids are pseudonymised (pseudonymize_users_key)"


class UserError(Exception):
    """A mistake of the user's: printed as one line, exit status 2."""


def register(subparsers: Any) -> None:
    budgets = subparsers.add_parser("budgets", help="budget status, block list, policy check")
    commands = budgets.add_subparsers(dest="budgets_command", metavar="SUBCOMMAND")
    budgets.set_defaults(func=lambda args: _usage(budgets))

    status = commands.add_parser("status", help="spend, limit and level of the budgets that apply")
    status.add_argument("--user")
    status.add_argument("--tenant")
    status.add_argument("--feature")
    _config_option(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=_status)

    block = commands.add_parser("block", help="stop every call of a user or tenant")
    _who(block)
    block.add_argument("--reason", required=True, help="shown to the app in BudgetExceeded.reason")
    _config_option(block)
    block.set_defaults(func=_block)

    unblock = commands.add_parser("unblock", help="lift a block made with `budgets block`")
    _who(unblock)
    _config_option(unblock)
    unblock.set_defaults(func=_unblock)

    blocked = commands.add_parser("blocked", help="list the block list in force")
    _config_option(blocked)
    blocked.add_argument("--json", action="store_true")
    blocked.set_defaults(func=_blocked)

    check = commands.add_parser("check", help="validate the budgets section of a configuration file")
    check.add_argument("file")
    check.set_defaults(func=_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help=f"configuration file (default: ${_CONFIG_ENV})")


def _who(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--user")
    group.add_argument("--tenant")


def load_config(path: str) -> BudgetConfig:
    """The budgets section of a YAML configuration file; other top-level keys are ignored."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = _yaml.safe_load(handle)  # 00042, 0755, 12:30 stay text, not YAML 1.1 numbers
    except OSError as error:
        raise UserError(f"{path}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {error}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(document).__name__}")
    if document.get("budgets") is None:
        raise UserError(f"{path}: no budgets section")
    try:
        return parse_budget_config(document["budgets"], source=path)
    except BudgetPolicyError as error:
        raise UserError(str(error)) from None


def app_pseudonymizer(path: str) -> Pseudonymizer | None:
    """The app's user pseudonymiser, from the key the app reads (this file, then the environment)."""
    config, errors = load_config_leniently({**os.environ, _CONFIG_ENV: path})
    for error in errors:
        if error.key == "pseudonymize_users_key":
            raise UserError(str(error))
    key = config.pseudonymize_users_key
    return Pseudonymizer(key) if key else None


def _guard(args: argparse.Namespace, *, shared: bool) -> tuple[BudgetGuard, Callable[[str], str] | None]:
    """A guard on the app's store, and the app's user pseudonymiser (None without a key)."""
    path = args.config or os.environ.get(_CONFIG_ENV)
    if not path:
        raise UserError(f"no configuration file: pass --config FILE or set {_CONFIG_ENV}")
    config = load_config(path)
    if config.store == "memory":
        message = (
            "the budget store is 'memory', which lives inside each app process; "
            "configure budgets.store as sqlite:///PATH or redis://HOST:PORT/DB to share it"
        )
        if shared:
            raise UserError(message)
        print(f"note: {message}", file=sys.stderr)
    pseudonymize = app_pseudonymizer(path)
    try:
        guard = BudgetGuard(config, pseudonymize=pseudonymize)
    except Exception as error:
        raise UserError(f"cannot open the budget store {redact_url(config.store)}: {error}") from None
    try:
        guard.blocked()  # fail now, with the store's own message, if it cannot be reached
    except Exception as error:
        guard.close()
        raise UserError(f"cannot reach the budget store: {error}") from None
    return guard, pseudonymize


def _run(handler: Any, args: argparse.Namespace) -> int:
    try:
        return int(handler(args))
    except UserError as error:
        print(f"genai-meter budgets: {error}", file=sys.stderr)
        return 2


def _status(args: argparse.Namespace) -> int:
    return _run(_status_inner, args)


def _status_inner(args: argparse.Namespace) -> int:
    guard, pseudonymize = _guard(args, shared=False)
    user = args.user if args.user is None or pseudonymize is None else pseudonymize(args.user)
    try:
        statuses = guard.status(user=user, tenant=args.tenant, feature=args.feature)
    finally:
        guard.close()
    if args.json:
        print(json.dumps([_status_json(s) for s in statuses], indent=2))
        return 0
    if not statuses:
        print("no budget applies")
        return 0
    rows = [("BUDGET", "SCOPE", "PERIOD END", "SPEND", "LIMIT", "USED", "LEVEL", "USES LEFT")]
    for s in statuses:
        uses = (
            "?"
            if s.uses_remaining_min is None
            else (
                f"{s.uses_remaining_min}"
                if s.uses_remaining_min == s.uses_remaining_max
                else f"{s.uses_remaining_min}-{s.uses_remaining_max}"
            )
        )
        rows.append(
            (
                s.budget,
                s.scope_value,
                s.period_end.isoformat(timespec="minutes"),
                f"${s.spend_usd:.4f}",
                "-" if s.limit_usd is None else f"${s.limit_usd:.2f}",
                f"{s.percent_used:.1f}%",
                s.level,
                uses,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _status_json(s: BudgetStatus) -> dict[str, Any]:
    return {
        "budget": s.budget,
        "scope_value": s.scope_value,
        "period_start": s.period_start.isoformat(),
        "period_end": s.period_end.isoformat(),
        "spend_usd": s.spend_usd,
        "limit_usd": s.limit_usd,
        "percent_used": s.percent_used,
        "level": s.level,
        "uses_remaining_min": s.uses_remaining_min,
        "uses_remaining_max": s.uses_remaining_max,
        "confidence": s.confidence,
        "mode": s.mode,
        "requests": s.requests,
        "max_requests": s.max_requests,
        "tokens": s.tokens,
        "max_tokens": s.max_tokens,
    }


def _kind_value(args: argparse.Namespace) -> tuple[str, str]:
    return ("user", args.user) if args.user is not None else ("tenant", args.tenant)


def _stored(kind: str, value: str, pseudonymize: Callable[[str], str] | None) -> tuple[str, str]:
    """The value as the store keeps it, and how to show it: a user's pseudonym next to their id."""
    if kind != "user" or pseudonymize is None:
        return value, repr(value)
    stored = pseudonymize(value)
    return stored, f"{value!r} (stored as {stored})"


def _block(args: argparse.Namespace) -> int:
    def inner(args: argparse.Namespace) -> int:
        kind, value = _kind_value(args)
        guard, pseudonymize = _guard(args, shared=True)
        stored, shown = _stored(kind, value, pseudonymize)
        try:
            guard.block(kind, stored, args.reason)
        except Exception as error:
            raise UserError(f"cannot block {kind} {value!r}: {error}") from None
        finally:
            guard.close()
        print(f"blocked {kind} {shown}: {args.reason}")
        return 0

    return _run(inner, args)


def _unblock(args: argparse.Namespace) -> int:
    def inner(args: argparse.Namespace) -> int:
        kind, value = _kind_value(args)
        guard, pseudonymize = _guard(args, shared=True)
        stored, shown = _stored(kind, value, pseudonymize)
        try:
            removed = guard.unblock(kind, stored)
            still = guard.blocked().get((kind, stored))
        except Exception as error:
            raise UserError(f"cannot unblock {kind} {value!r}: {error}") from None
        finally:
            guard.close()
        if still is not None:
            raise UserError(f"{kind} {value!r} is blocked by the configuration file; remove it there")
        if not removed:  # a mistyped id must not read as done
            print(f"{kind} {shown} was not blocked", file=sys.stderr)
            return 1
        print(f"unblocked {kind} {shown}")
        return 0

    return _run(inner, args)


def _blocked(args: argparse.Namespace) -> int:
    def inner(args: argparse.Namespace) -> int:
        guard, pseudonymize = _guard(args, shared=False)
        try:
            entries = guard.blocked()
        finally:
            guard.close()
        if pseudonymize is not None:
            print(_PSEUDONYMISED_NOTE, file=sys.stderr)
        if args.json:
            print(
                json.dumps(
                    [{"kind": k, "value": v, "reason": r} for (k, v), r in sorted(entries.items())], indent=2
                )
            )
        elif not entries:
            print("nobody is blocked")
        else:
            for (kind, value), reason in sorted(entries.items()):
                print(f"{kind} {value}: {reason}")
        return 0

    return _run(inner, args)


def _check(args: argparse.Namespace) -> int:
    def inner(args: argparse.Namespace) -> int:
        config = load_config(args.file)
        print(
            f"{args.file}: ok ({len(config.policies)} budget(s), {len(config.blocked)} block list entr"
            f"{'y' if len(config.blocked) == 1 else 'ies'}, store {redact_url(config.store)})"
        )
        return 0

    return _run(inner, args)
