"""`BudgetGuard`: check and reserve before a call, settle after it.

The hot path is a handful of dict lookups and float compares: policies matching a (user, tenant,
feature) are resolved once and cached, each budget counter keeps its period as two Unix times and
only recomputes it when the clock leaves them, and the store does one atomic operation per call.

A budget counter is named by the budget and the call's *scope value*; both are written so that two
different budgets, or two different combinations of values, can never share a counter (`_escaped`).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from opentelemetry.metrics import Meter

from genai_meter import names
from genai_meter._fork import reset_in_child
from genai_meter._metrics import DEFAULT_MAX_SERIES
from genai_meter._redact import redact_url
from genai_meter.budgets._config import GLOBAL_SCOPE_VALUE, WILDCARD, BudgetConfig, BudgetPolicy, as_calls_carry
from genai_meter.budgets._errors import (
    BLOCK_LIST_BUDGET,
    KIND_BLOCK_LIST,
    KIND_STORE_UNAVAILABLE,
    BudgetExceeded,
)
from genai_meter.budgets._metrics import BudgetMetrics
from genai_meter.budgets._periods import period_bounds
from genai_meter.budgets._status import level_for, uses_remaining
from genai_meter.budgets._store import SpendStore, StoreUnavailable, open_store, refusal
from genai_meter.budgets._types import (
    NANO,
    Blocked,
    BudgetStatus,
    Counters,
    PendingCall,
    Reservation,
    Target,
    ThresholdEvent,
)

logger = logging.getLogger("genai_meter.budgets")

_GRACE_S = 2 * 86400
_STORE_RETRY_S = 1.0  # after a store error, calls skip the store (and take the fail mode) this long
_ROUTE_CACHE = 65536
_LIKE_CALLS = 16
_UNSETTLED_MAX = 4096  # settles the store refused, kept for replay; beyond it the oldest is dropped
_REPLAY_BATCH = 64  # settles one store operation replays first, so one call never waits for them all
_BLOCK_KINDS = ("user", "tenant")
_OUTCOME_OPEN = "open"
_OUTCOME_CLOSED = "closed"
_PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 90000, "week": 7 * 86400 + 3600, "month": 32 * 86400}


def _timestamp(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _escaped(value: str, separator: str) -> str:
    """`value` with `%` and `separator` percent-encoded (`%25`, `%2F` for `/`, `%7C` for `|`), so that
    values joined by `separator` can only come from those values; any other text reads as it is."""
    if "%" not in value and separator not in value:
        return value
    return value.replace("%", "%25").replace(separator, f"%{ord(separator):02X}")


class _Policy:
    """A policy with its time zone resolved and its current period cached.

    With a pseudonymiser, a user named in `match` is compared in the form the calls carry.
    """

    __slots__ = ("end", "index", "match", "policy", "start", "tz")

    def __init__(self, policy: BudgetPolicy, index: int, pseudonymize: Callable[[str], str] | None) -> None:
        self.policy = policy
        self.index = index
        self.tz = ZoneInfo(policy.timezone)
        self.match = tuple(
            (dimension, as_calls_carry(dimension, wanted, pseudonymize) if wanted != WILDCARD else wanted)
            for dimension, wanted in policy.match
        )
        self.start = 0.0
        self.end = -1.0

    def scope_value(self, values: dict[str, str | None]) -> str | None:
        """The scope value a call with these attributes counts against, or None if it does not apply.

        One dimension: the value itself. Several: the values in scope order joined with `/`, each
        with its own `/` (and `%`) escaped, so tenant `a/b` with feature `c` is `a%2Fb/c` and tenant
        `a` with feature `b/c` is `a/b%2Fc`: two budgets, not one.
        """
        parts = []
        for dimension, wanted in self.match:
            value = values[dimension]
            if value is None or (wanted != WILDCARD and value != wanted):
                return None
            parts.append(value)
        if not parts:
            return GLOBAL_SCOPE_VALUE
        if len(parts) == 1:
            return parts[0]
        return "/".join([_escaped(part, "/") for part in parts])

    def bounds(self, now: float) -> tuple[float, float]:
        if not self.start <= now < self.end:
            self.start, self.end = period_bounds(self.policy.period, self.tz, now)
        return self.start, self.end


class BudgetGuard:
    """Enforces the budgets of one `BudgetConfig`; share one guard per process.

    Nothing but `BudgetExceeded` leaves `check_and_reserve`; `settle` and `status` never raise.
    `block` and `unblock` are admin calls and raise `StoreUnavailable` when the store is down.

    `pseudonymize` is what the instrumentation applies to user ids before they reach the guard
    (`pseudonymize_users_key`). The configuration names users by their own ids; the guard translates
    the users of policy matches and of the configured block list with it once, here. Every other
    user value, given to or returned by any method, is in the calls' form: a caller holding a raw
    id (an app's UI, the CLI) pseudonymises it first, and no raw id reaches the store.
    """

    def __init__(
        self,
        config: BudgetConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        on_threshold: Callable[[ThresholdEvent], None] | None = None,
        meter: Meter | None = None,
        label_cap: int = 1000,
        max_series: int = DEFAULT_MAX_SERIES,
        pseudonymize: Callable[[str], str] | None = None,
        store: SpendStore | None = None,
    ) -> None:
        self.config = config
        self._now: Callable[[], float] = time.time if clock is None else (lambda: _timestamp(clock()))
        self._on_threshold = on_threshold
        # `store`: one handed over by the guard this one replaces (`hand_over_store`), else opened.
        self._store = open_store(config, self._now) if store is None else store
        self._owns_store = True
        self._policies = [_Policy(policy, index, pseudonymize) for index, policy in enumerate(config.policies)]
        self._routes: dict[tuple[str | None, str | None, str | None], tuple[Target, ...]] = {}
        self._targets: dict[tuple[int, str], Target] = {}
        self._like: dict[tuple[str, str, str], deque[int]] = {}
        # Block list: config entries always apply; store entries are re-read every block_refresh_s.
        self._config_blocks = {
            (entry.kind, as_calls_carry(entry.kind, entry.value, pseudonymize)): entry.reason
            for entry in config.blocked
        }
        self._blocked_users: dict[str, str] = {}
        self._blocked_tenants: dict[str, str] = {}
        self._apply_blocks({} if store is None else store.blocked())  # a handed-over store's blocks
        self._shared_store = config.store != "memory"
        self._blocks_due = 0.0
        self._store_down_until = 0.0
        self._store_down = False
        # Settles the store refused, or that were not sent to it in an outage (reservation, actual
        # nano-USD or -1, tokens), oldest first: each is applied by the next store operation that
        # works, so a blip never leaves an estimate reserved (and a hard budget refusing calls it has
        # room for) until the period ends, and calls sent unreserved in an outage are counted.
        self._unsettled: deque[tuple[Reservation, int, int]] = deque()
        self._unsettled_lock = threading.Lock()
        self._dropping_logged = False
        # Reservation ids, for a store that marks each reservation (Redis: see `_redis`); "" for the others
        self._marks_reservations = bool(getattr(self._store, "marks_reservations", False))
        self._new_ids()
        # Scope value labels: at most `label_cap` per budget and `max_series` series per instrument.
        self._metrics = BudgetMetrics(
            meter, lambda: list(self._targets.values()), self._now, label_cap=label_cap, max_series=max_series
        )
        for policy in config.policies:
            priced = policy.limit_usd is not None
            self._metrics.register_budget(
                policy.name,
                gauges=priced,
                blocked=policy.mode == "hard",
                thresholds=policy.thresholds if priced else (),
            )
        self._metrics.register_budget(BLOCK_LIST_BUDGET, gauges=False, blocked=True)
        reset_in_child(self, BudgetGuard._after_fork)

    def _after_fork(self) -> None:
        # A forked child: the lock may have been held by a thread that is not here; the settles
        # kept for the store are the parent's, which applies them (applied here too, twice).
        self._unsettled_lock = threading.Lock()
        self._unsettled.clear()
        self._new_ids()  # the parent goes on with its own: a child's must differ

    def _new_ids(self) -> None:
        """Reservation ids unique across processes and hosts (a random prefix) at the cost of a
        counter per call (`_reservation_id`)."""
        self._id_prefix = os.urandom(8).hex() + ":"
        self._id_numbers = itertools.count()

    def _reservation_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_numbers):x}"

    # --- the hot path --------------------------------------------------------------------------
    def check_and_reserve(self, call: PendingCall) -> Reservation | None:
        """Reserve the call's estimated cost on every budget that applies, or raise BudgetExceeded.

        Returns None when no budget applies. When the store is down and the guard fails open, the
        reservation returned holds nothing (`held` False): its settle counts the call all the same,
        in the store once it is back.
        """
        try:
            now = self._now()
            if self._shared_store or self._blocked_users or self._blocked_tenants:
                self._refuse_blocked(call, now)
            route = self._routes.get((call.user, call.tenant, call.feature))
            if route is None:
                route = self._route(call.user, call.tenant, call.feature)
            if not route:
                return None
            for target in route:
                if not target.period_start <= now < target.period_end:
                    self._roll(target, now)
            like_key = (call.provider, call.model, call.operation)
            if call.estimate_usd is not None:
                estimate = round(call.estimate_usd * NANO) if call.estimate_usd > 0 else 0
            else:
                like = self._like.get(like_key)
                estimate = max(like) if like else 0
            keys = (route[0].key,) if len(route) == 1 else tuple([t.key for t in route])
            reservation_id = self._reservation_id() if self._marks_reservations else ""
            if now < self._store_down_until:
                self._store_unavailable(route, now, None)
                return Reservation(route, keys, estimate, like_key, held=False, id=reservation_id)
            try:
                if self._unsettled:  # first, so that their released estimates count for this call
                    self._replay()
                blocked = self._store.reserve(route, keys, estimate, reservation_id)
            except Exception as error:
                self._store_unavailable(route, now, error)
                return Reservation(route, keys, estimate, like_key, held=False, id=reservation_id)
            if self._store_down:
                self._store_recovered()
            if blocked is not None:
                self._raise_exceeded(route[blocked.index], blocked)
            return Reservation(route, keys, estimate, like_key, id=reservation_id)
        except BudgetExceeded:
            raise
        except Exception as error:  # a fault of ours must never stop the app's call
            _record_fault("budgets.check_and_reserve", error)
            return None

    def _refuse_blocked(self, call: PendingCall, now: float) -> None:
        """Raise BudgetExceeded when the call's user or tenant is on the block list (a shared
        store's list read again every `block_refresh_s`)."""
        if self._shared_store and now >= self._blocks_due:
            self._refresh_blocks(now)
        if (self._blocked_users and call.user in self._blocked_users) or (
            self._blocked_tenants and call.tenant in self._blocked_tenants
        ):
            self._raise_blocked(call)

    def _current_route(self, call: PendingCall, now: float) -> tuple[Target, ...]:
        """The budget counters `call` counts against, in their current periods (`check_and_reserve`
        does the same inline: it is the hot path)."""
        route = self._routes.get((call.user, call.tenant, call.feature))
        if route is None:
            route = self._route(call.user, call.tenant, call.feature)
        for target in route:
            if not target.period_start <= now < target.period_end:
                self._roll(target, now)
        return route

    def check_batch(self, call: PendingCall, requests: int) -> None:
        """Refuse a batch of `requests` calls about to be created, whose estimated cost is
        `call.estimate_usd`, where a hard budget that applies has no room for it (spend and
        reservations, request and token counts as the store has them now) or its user or tenant is
        blocked: raises BudgetExceeded. Nothing is reserved: a batch's results are counted as they
        are read (`count_made`), so two batches checked at once may both pass. A store that cannot
        be read takes the budget's fail mode."""
        try:
            now = self._now()
            self._refuse_blocked(call, now)
            estimate = round(call.estimate_usd * NANO) if call.estimate_usd and call.estimate_usd > 0 else 0
            more = max(requests - 1, 0)  # (a target refuses a call when its requests are at the limit)
            for target in self._current_route(call, now):
                if not target.hard:
                    continue
                try:
                    seen = self._store.read(target.key)
                except Exception as error:
                    self._store_unavailable((target,), now, error)
                    continue
                why = refusal(target, seen.spend, seen.reserved, seen.requests + more, seen.tokens, estimate)
                if why is not None:
                    blocked = Blocked(0, why, seen.spend, seen.reserved, seen.requests, seen.tokens, False)
                    self._raise_exceeded(target, blocked)
        except BudgetExceeded:
            raise
        except Exception as error:  # a fault of ours must never stop the app's batch
            _record_fault("budgets.check_batch", error)

    def count_made(self, call: PendingCall) -> Reservation | None:
        """For a call made already (a batch's result, read later): a reservation holding nothing,
        whose settle counts the call on every budget that applies; never blocks, never raises. None
        when no budget applies."""
        try:
            route = self._current_route(call, self._now())
            if not route:
                return None
            keys = tuple([t.key for t in route])
            like_key = (call.provider, call.model, call.operation)
            reservation_id = self._reservation_id() if self._marks_reservations else ""
            return Reservation(route, keys, 0, like_key, held=False, id=reservation_id)
        except Exception as error:
            _record_fault("budgets.count_made", error)
            return None

    def settle(
        self, reservation: Reservation, actual_cost_usd: float | None, tokens: int = 0
    ) -> list[ThresholdEvent]:
        """Replace the reservation by the real cost (None releases it); returns thresholds fired now.

        When the store fails, or failed less than a second ago (a call then does not wait for its
        timeout again), the settle is kept and applied by the next store operation that works (or
        at `close`); thresholds it reaches then fire there (callbacks, log, metric), not on this
        call's span.
        """
        try:
            if reservation.settled:
                return []
            reservation.settled = True
            actual = -1 if actual_cost_usd is None else max(0, round(actual_cost_usd * NANO))
            if self._store_down and self._now() < self._store_down_until:  # (counted at the call's check)
                self._keep_unsettled(reservation, actual, tokens)
                return []
            try:
                if self._unsettled:
                    self._replay()
                spends, fired = self._store.settle(reservation, actual, tokens)
            except Exception as error:
                self._store_error(error, _OUTCOME_OPEN)
                self._keep_unsettled(reservation, actual, tokens)
                return []
            return self._settled(reservation, actual, spends, fired)
        except Exception as error:
            _record_fault("budgets.settle", error)
            return []

    def _settled(
        self, reservation: Reservation, actual: int, spends: list[int], fired: list[tuple[int, int]]
    ) -> list[ThresholdEvent]:
        """What follows a settle the store applied: gauges, the estimate history, thresholds."""
        targets, keys = reservation.targets, reservation.keys
        for target, key, spend in zip(targets, keys, spends, strict=True):
            target.last_spend = spend
            target.last_key = key
        if actual >= 0:
            like = self._like.get(reservation.like_key)
            if like is None:
                like = self._like[reservation.like_key] = deque(maxlen=_LIKE_CALLS)
            like.append(actual)
        if not fired:
            return []
        return [self._fire(targets[i], keys[i], j, spends[i]) for i, j in fired]

    def _keep_unsettled(self, reservation: Reservation, actual: int, tokens: int) -> None:
        """Keep a settle the store refused for `_replay`; a long outage drops the oldest (logged once)."""
        with self._unsettled_lock:
            if len(self._unsettled) >= _UNSETTLED_MAX:
                self._unsettled.popleft()
                if not self._dropping_logged:
                    self._dropping_logged = True
                    logger.warning(
                        "%d settles wait for the budget store; the oldest are dropped: their costs go "
                        "uncounted, and the estimates of those that held one stay reserved until their "
                        "period ends",
                        _UNSETTLED_MAX,
                    )
            self._unsettled.append((reservation, actual, tokens))

    def _replay(self, batch: int = _REPLAY_BATCH) -> None:
        """Apply up to `batch` kept settles, oldest first; raises the store's error if it fails again.

        Each kept settle is taken off the queue before it is sent, so only one thread ever holds it,
        and goes back to the front only when the store was unreachable: it is applied once. One the
        store refuses for another reason is dropped and recorded as a fault, so that it cannot stop
        every later replay (and make every call take the fail mode).
        """
        for _ in range(batch):
            try:
                item = self._unsettled.popleft()
            except IndexError:
                self._dropping_logged = False
                return
            reservation, actual, tokens = item
            try:
                spends, fired = self._store.settle(reservation, actual, tokens)
            except StoreUnavailable:
                self._unsettled.appendleft(item)
                raise
            except Exception as error:
                _record_fault("budgets.settle", error)
                continue
            try:
                self._settled(reservation, actual, spends, fired)
            except Exception as error:
                _record_fault("budgets.settle", error)

    # --- routes and periods --------------------------------------------------------------------
    def _route(self, user: str | None, tenant: str | None, feature: str | None) -> tuple[Target, ...]:
        values = {"user": user, "tenant": tenant, "feature": feature}
        route = []
        for policy in self._policies:
            scope_value = policy.scope_value(values)
            if scope_value is not None:
                route.append(self._target(policy, scope_value))
        if len(self._routes) >= _ROUTE_CACHE:
            self._routes.clear()
            self._prune_targets()
        found = self._routes[(user, tenant, feature)] = tuple(route)
        return found

    def _target(self, policy: _Policy, scope_value: str) -> Target:
        target = self._targets.get((policy.index, scope_value))
        if target is not None:
            return target
        p = policy.policy
        limit = -1 if p.limit_usd is None else round(p.limit_usd * NANO)
        hard = p.mode == "hard"
        percents = p.thresholds if limit >= 0 else ()
        target = Target(
            policy_index=policy.index,
            budget=p.name,
            scope_value=scope_value,
            label=self._label(p.name, scope_value),
            limit=limit,
            hard=hard,
            max_requests=-1 if p.max_requests is None else p.max_requests,
            max_tokens=-1 if p.max_tokens is None else p.max_tokens,
            fields=tuple(f"f:{percent:g}" for percent in percents),
            # ceil: a threshold fires when spend reaches it, never a nano-dollar early.
            amounts=tuple(-(-limit * round(percent * 1000) // 100_000) for percent in percents),
            percents=percents,
            block_field="f:100" if hard and 100.0 in percents else "",
            fail_closed=hard and p.on_store_error == "closed",
            # The name is escaped, the scope value is not: name | scope value | period start splits
            # at the first and the last `|` only one way. Plain names and values keep the keys
            # counters had before escaping existed.
            recent_key=f"{_escaped(p.name, '|')}|{scope_value}",
            ttl=_PERIOD_SECONDS[p.period] + _GRACE_S,
        )
        self._targets[(policy.index, scope_value)] = target
        return target

    def _roll(self, target: Target, now: float) -> None:
        start, end = self._policies[target.policy_index].bounds(now)
        target.key = f"{target.recent_key}|{int(start)}"
        target.period_start, target.period_end = start, end

    @property
    def _lock(self) -> threading.Lock:
        """The lock under which scope values get their labels: the meter's, made again in a forked child."""
        return self._metrics.labels_lock

    def _label(self, budget: str, scope_value: str) -> str:
        """The scope value's label on the budget instruments: itself, or `__overflow__` past the caps."""
        return self._metrics.label(budget, scope_value)

    def _prune_targets(self) -> None:
        """Forget counters whose period has ended (their gauges already read 0)."""
        now = self._now()
        for key, target in list(self._targets.items()):
            if target.period_end <= now:
                self._targets.pop(key, None)

    # --- blocks, thresholds, store errors --------------------------------------------------------
    def _raise_blocked(self, call: PendingCall) -> None:
        if call.user is not None and call.user in self._blocked_users:
            kind, value, reason = "user", call.user, self._blocked_users[call.user]
        else:
            kind, value, reason = "tenant", str(call.tenant), self._blocked_tenants[str(call.tenant)]
        self._metrics.blocked(BLOCK_LIST_BUDGET, self._label(BLOCK_LIST_BUDGET, f"{kind}:{value}"))
        raise BudgetExceeded(BLOCK_LIST_BUDGET, value, 0.0, 0.0, None, reason or None, kind=KIND_BLOCK_LIST)

    def _raise_exceeded(self, target: Target, blocked: Blocked) -> None:
        self._metrics.blocked(target.budget, target.label)
        events = []
        if blocked.fired:
            index = target.fields.index(target.block_field)
            events.append(self._fire(target, target.key, index, blocked.spend))
        raise BudgetExceeded(
            target.budget,
            target.scope_value,
            max(target.limit, 0) / NANO,
            blocked.spend / NANO,
            self._moment(target, target.period_end),
            None,
            kind=blocked.kind,
            events=events,
        )

    def _moment(self, target: Target, when: float) -> datetime:
        return datetime.fromtimestamp(when, self._policies[target.policy_index].tz)

    def _fire(self, target: Target, key: str, index: int, spend: int) -> ThresholdEvent:
        start = float(key.rsplit("|", 1)[1])
        _, end = period_bounds(
            self._policies[target.policy_index].policy.period, self._policies[target.policy_index].tz, start
        )
        event = ThresholdEvent(
            budget=target.budget,
            scope_value=target.scope_value,
            threshold_percent=target.percents[index],
            spend_usd=spend / NANO,
            limit_usd=target.limit / NANO,
            period_start=self._moment(target, start),
            period_end=self._moment(target, end),
        )
        self._metrics.threshold(target.budget, target.label, event.threshold_percent)
        logger.warning(
            "budget %r (%s) reached %g%%: $%.4f of $%.4f in the period %s to %s",
            event.budget,
            event.scope_value,
            event.threshold_percent,
            event.spend_usd,
            event.limit_usd,
            event.period_start.isoformat(),
            event.period_end.isoformat(),
        )
        if self._on_threshold is not None:
            try:
                self._on_threshold(event)
            except Exception as error:
                _record_fault("budgets.on_threshold", error)
        return event

    def _store_unavailable(self, route: tuple[Target, ...], now: float, error: Exception | None) -> None:
        closed = next((target for target in route if target.fail_closed), None)
        outcome = _OUTCOME_OPEN if closed is None else _OUTCOME_CLOSED
        if error is not None:
            self._store_down_until = now + _STORE_RETRY_S
        self._store_error(error, outcome)
        if closed is None:
            return
        self._metrics.blocked(closed.budget, closed.label)
        raise BudgetExceeded(
            closed.budget,
            closed.scope_value,
            max(closed.limit, 0) / NANO,
            closed.last_spend / NANO if closed.last_spend >= 0 and closed.last_key == closed.key else 0.0,
            self._moment(closed, closed.period_end),
            "the budget store is unreachable and this budget fails closed",
            kind=KIND_STORE_UNAVAILABLE,
        )

    def _store_error(self, error: Exception | None, outcome: str, *, count: bool = True) -> None:
        if count:
            self._metrics.store_error(outcome)
        if not self._store_down:
            self._store_down = True
            logger.warning(
                "budget store %s failed (%s); budgets fail %s until it works again (further errors are "
                "counted in %s)",
                redact_url(self.config.store),
                error,
                outcome,
                names.BUDGET_STORE_ERRORS.prometheus_name,
            )

    def _store_recovered(self) -> None:
        self._store_down = False
        logger.info("budget store %s is reachable again", redact_url(self.config.store))

    def _refresh_blocks(self, now: float) -> None:
        self._blocks_due = now + self.config.block_refresh_s
        if now < self._store_down_until:
            return
        try:
            stored = self._store.blocked()
        except Exception as error:
            # Counted by the call that goes on (or not) without the store, once per call.
            self._store_down_until = now + _STORE_RETRY_S
            self._store_error(error, _OUTCOME_OPEN, count=False)
            return
        self._apply_blocks(stored)

    def _apply_blocks(self, stored: dict[tuple[str, str], str]) -> None:
        merged = {**stored, **self._config_blocks}
        self._blocked_users = {value: reason for (kind, value), reason in merged.items() if kind == "user"}
        self._blocked_tenants = {
            value: reason for (kind, value), reason in merged.items() if kind == "tenant"
        }

    # --- admin and status ----------------------------------------------------------------------
    def block(self, kind: str, value: str, reason: str) -> None:
        """Block a user or tenant in the store (other processes see it within block_refresh_s)."""
        if kind not in _BLOCK_KINDS:
            raise ValueError(f"can only block a user or a tenant, not {kind!r}")
        self._store.block(kind, value, reason)
        self._apply_blocks(self._store.blocked())

    def unblock(self, kind: str, value: str) -> bool:
        """Lift a block made with `block` (entries in the configuration file stay).

        Returns whether the store held such a block, so that a mistyped id is not reported as
        unblocked.
        """
        if kind not in _BLOCK_KINDS:
            raise ValueError(f"can only unblock a user or a tenant, not {kind!r}")
        removed = self._store.unblock(kind, value)
        self._apply_blocks(self._store.blocked())
        return removed

    def blocked(self) -> dict[tuple[str, str], str]:
        """The block list in force: (kind, value) -> reason, from the store and the configuration."""
        return {**self._store.blocked(), **self._config_blocks}

    def status(
        self, *, user: str | None = None, tenant: str | None = None, feature: str | None = None
    ) -> list[BudgetStatus]:
        """Each budget a call by this user / tenant / feature would count against, in its current period."""
        try:
            now = self._now()
            statuses = []
            for target in self._route(user, tenant, feature):
                if not target.period_start <= now < target.period_end:
                    self._roll(target, now)
                statuses.append(self._status(target))
            return statuses
        except Exception as error:
            _record_fault("budgets.status", error)
            return []

    def _status(self, target: Target) -> BudgetStatus:
        policy = self._policies[target.policy_index].policy
        key = target.key
        try:
            counters = self._store.read(key)
            costs = self._store.recent(target.recent_key)
        except Exception as error:
            self._store_error(error, _OUTCOME_OPEN)
            seen = target.last_spend if target.last_key == key and target.last_spend >= 0 else 0
            counters, costs = Counters(spend=seen), []
        limit = target.limit
        percents = []
        if limit > 0:
            percents.append(100.0 * counters.spend / limit)
        elif limit == 0:
            percents.append(100.0)
        if target.max_requests >= 0:
            percents.append(100.0 * counters.requests / target.max_requests if target.max_requests else 100.0)
        if target.max_tokens >= 0:
            percents.append(100.0 * counters.tokens / target.max_tokens if target.max_tokens else 100.0)
        percent = max(percents) if percents else 0.0
        remaining = None if limit < 0 else limit - counters.spend - counters.reserved
        requests_left = None if target.max_requests < 0 else target.max_requests - counters.requests
        low, high, confidence = uses_remaining(remaining, costs, requests_left)
        if target.max_tokens >= 0 and counters.tokens >= target.max_tokens:
            low, high, confidence = 0, 0, 1.0
        return BudgetStatus(
            budget=target.budget,
            scope_value=target.scope_value,
            period_start=self._moment(target, target.period_start),
            period_end=self._moment(target, target.period_end),
            spend_usd=counters.spend / NANO,
            limit_usd=None if limit < 0 else limit / NANO,
            percent_used=round(percent, 6),
            level=level_for(percent, policy.thresholds),
            uses_remaining_min=low,
            uses_remaining_max=high,
            confidence=confidence,
            mode=policy.mode,
            reserved_usd=counters.reserved / NANO,
            requests=counters.requests,
            max_requests=policy.max_requests,
            tokens=counters.tokens,
            max_tokens=policy.max_tokens,
        )

    def hand_over_store(self) -> SpendStore | None:
        """The memory store, for the guard that replaces this one (`configure()` at run time), so
        that the spend, requests and tokens counted so far still count: a new memory store would
        start from zero and a hard budget could be spent again. None for a shared store (SQLite,
        Redis), which keeps its counters anyway. This guard keeps using it for the calls still in
        flight (the store is thread-safe) and no longer closes it."""
        from genai_meter.budgets._memory import MemoryStore

        if not isinstance(self._store, MemoryStore):
            return None
        self._owns_store = False
        self._store.carry_over()
        return self._store

    def close(self) -> None:
        """Apply the settles still kept for the store (they are lost if it is still down), then close
        it (unless it was handed over to another guard)."""
        try:
            while self._unsettled:
                self._replay()
        except Exception as error:
            self._store_error(error, _OUTCOME_OPEN, count=False)
            logger.warning(
                "budget store %s: %d settles could not be applied before closing: their costs go "
                "uncounted, and the estimates of those that held one stay reserved until their period ends",
                redact_url(self.config.store),
                len(self._unsettled),
            )
        if not self._owns_store:
            return
        try:
            self._store.close()
        except Exception as error:
            _record_fault("budgets.close", error)


def _record_fault(where: str, error: BaseException) -> None:
    from genai_meter._faults import record_fault

    record_fault(where, error)
