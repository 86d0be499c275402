"""The fleet quota store: Redis, one atomic Lua script per message.

In:  a redis URL (redis://, rediss:// or unix://), a timeout and a key prefix.
Out: the QuotaStore operations. Each counter is one Redis hash (field = bucket number,
     value = count); `admit` sends every counter of a message to one script, which sums the
     windows, refuses when any would pass its limit, and otherwise increments every current
     bucket and sets the key's expiry (PEXPIREAT) in the same step: no key is ever left
     without a TTL and no two MTAs can both take the last unit of a limit. One round trip
     per message (EVALSHA; redis-py reloads the script after a server restart).
     The time comes from the caller, so every MTA of a fleet must keep its clock (NTP).
Fails: QuotaStoreError for any Redis error (refused, timed out, script error). The keys of
     one message may sit on different slots, so Redis Cluster is not supported.
Thread safety: redis-py's connection pool is thread-safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from menshen.quota.rules import Counter
from menshen.quota.stores import Admission, QuotaStoreError

# KEYS: one hash per counter. ARGV: for each counter its current bucket, the number of
# buckets summed, its limit (-1: none), its amount and its expiry (unix ms); then 1 to
# charge or 0 to only look. Returns {admitted, index of the first refusing counter (1-based),
# usage...}: every window's sum before the charge when refused, with the amounts when not
# (whether or not it charged), as decide_admission reports it for the other stores.
ADMIT_SCRIPT = """
local n = #KEYS
local charge = tonumber(ARGV[5 * n + 1])
local usage = {}
local refused = 0
for i = 1, n do
  local base = (i - 1) * 5
  local bucket = tonumber(ARGV[base + 1])
  local oldest = bucket - tonumber(ARGV[base + 2]) + 1
  local limit = tonumber(ARGV[base + 3])
  local amount = tonumber(ARGV[base + 4])
  local fields = redis.call('HGETALL', KEYS[i])
  local total = 0
  for j = 1, #fields, 2 do
    local b = tonumber(fields[j])
    if b < oldest then
      redis.call('HDEL', KEYS[i], fields[j])
    elseif b <= bucket then
      total = total + tonumber(fields[j + 1])
    end
  end
  usage[i] = total
  if refused == 0 and limit >= 0 and total + amount > limit then
    refused = i
  end
end
if refused > 0 then
  return {0, refused, unpack(usage)}
end
for i = 1, n do
  local base = (i - 1) * 5
  if charge == 1 then
    redis.call('HINCRBY', KEYS[i], ARGV[base + 1], ARGV[base + 4])
    redis.call('PEXPIREAT', KEYS[i], ARGV[base + 5])
  end
  usage[i] = usage[i] + tonumber(ARGV[base + 4])
end
return {1, 0, unpack(usage)}
"""


class RedisStore:
    name = "redis"

    def __init__(self, url: str, timeout_seconds: float, key_prefix: str) -> None:
        try:
            import redis  # noqa: PLC0415 - optional: only a Redis-backed site needs it
        except ImportError as exc:  # the optional dependency (python3-redis) is missing
            raise QuotaStoreError(
                "quota store redis needs the redis module (python3-redis)"
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._script = self._client.register_script(ADMIT_SCRIPT)
        self._prefix = key_prefix
        self.url = url

    def admit(self, counters: Sequence[Counter], now: float, charge: bool = True) -> Admission:
        if not counters:
            return Admission(True, ())
        arguments: list[Any] = []
        for counter in counters:
            arguments += [
                counter.bucket,
                counter.buckets,
                -1 if counter.limit is None else counter.limit,
                counter.amount,
                math.ceil(counter.expires_at * 1000),
            ]
        arguments.append(1 if charge else 0)
        try:
            reply = self._script(keys=[self._prefix + c.key for c in counters], args=arguments)
        except self._errors as exc:
            raise QuotaStoreError(f"redis: {exc}") from exc
        admitted, refused, *usage = (int(value) for value in reply)
        return Admission(bool(admitted), tuple(usage), None if admitted else refused - 1)

    def usage(self, counters: Sequence[Counter], now: float) -> tuple[int, ...]:
        unlimited = [_unlimited(counter) for counter in counters]
        return self.admit(unlimited, now, charge=False).usage

    def reset(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(self._client.delete(*(self._prefix + key for key in keys)))
        except self._errors as exc:
            raise QuotaStoreError(f"redis: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except self._errors:
            return False

    def close(self) -> None:
        self._client.connection_pool.disconnect()


def _unlimited(counter: Counter) -> Counter:
    """A counter that only reads: no limit to check, nothing to add."""
    return replace(counter, limit=None, amount=0)
