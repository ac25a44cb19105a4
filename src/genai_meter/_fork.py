"""Locks and per-process state made again in a child of `fork()`.

A forked child has one thread, the one that forked. A lock another thread held at that moment is
held in the child for ever, and the child's first call that takes it hangs (gunicorn and
multiprocessing fork workers while the parent's threads run). Each object that owns such a lock
registers here, once, when it is made: in the child, `reset(obj)` makes its locks again (and drops
whatever else is the parent's: connections, threads, work in flight).

Objects are held by weak reference, so one that is no longer used is not kept alive, and there is
one `os.register_at_fork` hook for them all (Python keeps every hook for the life of the process).
A module-level lock is named once with `new_lock_in_child`.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

_entries: dict[int, tuple[weakref.ref[Any], Callable[[Any], None]]] = {}
_tokens = itertools.count()
_module_locks: list[tuple[str, str]] = []  # (module, attribute) of module-level locks


def reset_in_child(obj: _T, reset: Callable[[_T], None]) -> None:
    """Call `reset(obj)` in every child forked while `obj` lives. `reset` must not be a bound method
    of `obj` (it would keep `obj` alive): pass the class's function, e.g. `Store._after_fork`."""
    token = next(_tokens)
    _entries[token] = (weakref.ref(obj, lambda _ref: _entries.pop(token, None)), reset)


def new_lock_in_child(module: str, name: str = "_lock") -> None:
    """Make the module-level lock `module.name` again in every forked child (call it from `module`,
    after the lock is made)."""
    _module_locks.append((module, name))


def _in_child() -> None:
    for module, name in _module_locks:  # first: a reset below may record a fault, which takes a lock
        setattr(sys.modules[module], name, threading.Lock())
    while True:
        try:
            entries = list(_entries.values())
            break
        except RuntimeError:  # (a weak reference died meanwhile: take the list again)
            continue
    for ref, reset in entries:
        obj = ref()
        if obj is None:
            continue
        try:
            reset(obj)
        except Exception as error:
            from ._faults import record_fault

            record_fault("fork", error)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
