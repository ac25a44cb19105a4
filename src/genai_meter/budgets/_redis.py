"""Spend in Redis, shared by many hosts: one Lua script per operation, so one round trip each.

Every budget counter is a hash (spend, reserved, requests, tokens and one field per threshold
already fired). The script checks all hard budgets of a call and reserves on all of them, or on
none, atomically; settling claims each threshold with HSETNX, so exactly one process fires it.
Keys expire a period plus two days after their last write. A cluster would need hash tags; use a
single Redis (with replicas / Sentinel) for budgets.

A reply can be lost after Redis ran the script (a timeout while reading it). So each reservation
has a marker key, `<prefix>:s:<reservation id>`: the reserve sets it to `r`; the settle releases
the estimate only where it finds `r` (else it counts the request the reservation would have: the
guard sent the call unreserved) and leaves `d`, and a settle that finds `d` changes nothing. A
settle replayed after a lost reply, or a reservation whose reply was lost, is then counted once. The
`d` marker is kept for `SETTLED_TTL_S`; a replay later than that would count twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from genai_meter._redact import redact_url
from genai_meter.budgets._store import RECENT_COSTS, StoreUnavailable
from genai_meter.budgets._types import Blocked, Counters, Reservation, Target

SETTLED_TTL_S = 3600
"""How long a settled reservation's marker is kept (memory: ~100 bytes a call for this long)."""

_RESERVE = """
local est = tonumber(ARGV[1])
local n = #KEYS - 1
for i = 1, n do
  local o = 3 + (i - 1) * 6
  if ARGV[o] == '1' then
    local v = redis.call('HMGET', KEYS[i], 'spend', 'reserved', 'requests', 'tokens')
    local spend = tonumber(v[1]) or 0
    local reserved = tonumber(v[2]) or 0
    local requests = tonumber(v[3]) or 0
    local tokens = tonumber(v[4]) or 0
    local limit = tonumber(ARGV[o + 1])
    local maxr = tonumber(ARGV[o + 2])
    local maxt = tonumber(ARGV[o + 3])
    local why = nil
    if limit >= 0 and (spend + reserved >= limit or spend + reserved + est > limit) then
      why = 'usd'
    elseif maxr >= 0 and requests >= maxr then
      why = 'requests'
    elseif maxt >= 0 and tokens >= maxt then
      why = 'tokens'
    end
    if why then
      local fired = 0
      if why == 'usd' and ARGV[o + 5] ~= '' then
        fired = redis.call('HSETNX', KEYS[i], ARGV[o + 5], 1)
        redis.call('EXPIRE', KEYS[i], ARGV[o + 4])
      end
      return {i, why, spend, reserved, requests, tokens, fired}
    end
  end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[1])
  redis.call('HINCRBY', KEYS[i], 'requests', 1)
  redis.call('EXPIRE', KEYS[i], ARGV[3 + (i - 1) * 6 + 4])
end
redis.call('SET', KEYS[n + 1], 'r', 'EX', ARGV[2])
return 0
"""

_SETTLE = """
local release = ARGV[1]
local actual = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local n = (#KEYS - 1) / 2
local mark = KEYS[#KEYS]
local out = {}
local state = redis.call('GET', mark)
if state == 'd' then
  for i = 1, n do
    out[i] = {tonumber(redis.call('HGET', KEYS[i], 'spend')) or 0, {}}
  end
  return out
end
redis.call('SET', mark, 'd', 'EX', ARGV[5])
local o = 6
for i = 1, n do
  local k = KEYS[i]
  local ttl = ARGV[o]
  local nt = tonumber(ARGV[o + 1])
  o = o + 2
  if state == 'r' then
    if redis.call('HINCRBY', k, 'reserved', release) < 0 then
      redis.call('HSET', k, 'reserved', 0)
    end
  else
    redis.call('HINCRBY', k, 'requests', 1)
  end
  if tokens > 0 then
    redis.call('HINCRBY', k, 'tokens', ARGV[3])
  end
  local spend
  if actual >= 0 then
    spend = redis.call('HINCRBY', k, 'spend', ARGV[2])
    redis.call('LPUSH', KEYS[n + i], ARGV[2])
    redis.call('LTRIM', KEYS[n + i], 0, keep - 1)
    redis.call('EXPIRE', KEYS[n + i], ttl)
  else
    spend = tonumber(redis.call('HGET', k, 'spend')) or 0
  end
  redis.call('EXPIRE', k, ttl)
  local fired = {}
  for j = 1, nt do
    if actual >= 0 and spend >= tonumber(ARGV[o]) and redis.call('HSETNX', k, ARGV[o + 1], 1) == 1 then
      fired[#fired + 1] = j
    end
    o = o + 2
  end
  out[i] = {spend, fired}
end
return out
"""

_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisStore:
    marks_reservations = True  # (the guard gives each reservation an id, see the module's doc)

    def __init__(self, url: str, prefix: str, *, timeout_s: float = 0.25) -> None:
        self._url = url
        # No retries: a down Redis must cost the app one short timeout, then the guard's fail mode.
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
        self._counter = f"{prefix}:c:"
        self._recent = f"{prefix}:r:"
        self._marker = f"{prefix}:s:"
        self._blocked = f"{prefix}:blocked"
        self._reserve_script = self._client.register_script(_RESERVE)
        self._settle_script = self._client.register_script(_SETTLE)

    def _run(self, script: Any, keys: list[str], args: list[object]) -> Any:
        try:
            return script(keys=keys, args=args)
        except _UNREACHABLE as error:
            raise StoreUnavailable(f"Redis budget store {redact_url(self._url)}: {error}") from error

    def reserve(
        self, targets: Sequence[Target], keys: Sequence[str], estimate: int, reservation_id: str
    ) -> Blocked | None:
        if not reservation_id:
            raise ValueError("a reservation made in Redis needs an id (made by BudgetGuard)")
        args: list[object] = [estimate, max(t.ttl for t in targets)]
        for t in targets:
            args += ("1" if t.hard else "0", t.limit, t.max_requests, t.max_tokens, t.ttl, t.block_field)
        names = [self._counter + key for key in keys] + [self._marker + reservation_id]
        answer = self._run(self._reserve_script, names, args)
        if not answer:
            return None
        index, why, spend, reserved, requests, tokens, fired = answer
        return Blocked(
            int(index) - 1,
            why.decode() if isinstance(why, bytes) else str(why),
            int(spend),
            int(reserved),
            int(requests),
            int(tokens),
            bool(fired),
        )

    def settle(self, reservation: Reservation, actual: int, tokens: int) -> tuple[list[int], list[tuple[int, int]]]:
        """(`reservation.held` is not read: the reservation's marker says whether Redis made it.)"""
        if not reservation.id:  # (every marker would be one key: the first settle would stop the rest)
            raise ValueError("a reservation settled in Redis needs its id (made by BudgetGuard)")
        targets, keys = reservation.targets, reservation.keys
        # Integers go to HINCRBY as the strings we pass: a Lua number can turn into "-0" or "1e+18".
        args: list[object] = [str(-reservation.estimate), actual, tokens, RECENT_COSTS, SETTLED_TTL_S]
        for t in targets:
            args += (t.ttl, len(t.amounts))
            for amount, field in zip(t.amounts, t.fields, strict=True):
                args += (amount, field)
        names = [self._counter + key for key in keys] + [self._recent + t.recent_key for t in targets]
        names.append(self._marker + reservation.id)
        answer = self._run(self._settle_script, names, args)
        spends = [int(item[0]) for item in answer]
        fired = [(i, int(j) - 1) for i, item in enumerate(answer) for j in item[1]]
        return spends, fired

    def _call(self, method: str, *args: object) -> Any:
        try:
            return getattr(self._client, method)(*args)
        except _UNREACHABLE as error:
            raise StoreUnavailable(f"Redis budget store {redact_url(self._url)}: {error}") from error

    def read(self, key: str) -> Counters:
        raw = self._call("hgetall", self._counter + key)
        values = {k.decode(): v.decode() for k, v in raw.items()}
        return Counters(
            int(values.get("spend", 0)),
            int(values.get("reserved", 0)),
            int(values.get("requests", 0)),
            int(values.get("tokens", 0)),
            tuple(sorted(k for k in values if k.startswith("f:"))),
        )

    def recent(self, recent_key: str) -> list[int]:
        return [int(item) for item in self._call("lrange", self._recent + recent_key, 0, RECENT_COSTS - 1)]

    def blocked(self) -> dict[tuple[str, str], str]:
        entries: dict[tuple[str, str], str] = {}
        for field, reason in self._call("hgetall", self._blocked).items():
            kind, _, value = field.decode().partition(":")
            entries[(kind, value)] = reason.decode()
        return entries

    def block(self, kind: str, value: str, reason: str) -> None:
        self._call("hset", self._blocked, f"{kind}:{value}", reason)

    def unblock(self, kind: str, value: str) -> bool:
        return bool(self._call("hdel", self._blocked, f"{kind}:{value}"))

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass
