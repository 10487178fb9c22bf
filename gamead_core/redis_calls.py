"""What an API node asks of its Redis: the key prefixes and the token-bucket script (review28 R1).

Traffic makes two kinds of call: the shared rate limits run :data:`TOKEN_BUCKET_LUA` (``EVALSHA``, and
``SCRIPT LOAD`` once per server) on keys under :data:`RATE_LIMIT_PREFIX`; the record cache does ``SET`` with a
TTL and ``GET`` under :data:`CACHE_PREFIX`. The health check (:meth:`gamead_core.redis_link.RedisLink.write_probe`)
makes the same calls under the same prefixes (:data:`HEALTH_BUCKET_KEY`, :data:`HEALTH_CACHE_KEY`), so an ACL user
allowed plain writes but no scripts, or limited to these prefixes, reads as what traffic will meet. Constants only:
:mod:`gamead_core.api.ratelimit`, :mod:`gamead_core.api.cache` and the link import them from here (no cycle).
"""

from __future__ import annotations

from typing import Final

#: Redis key of one bucket: ``gamead:rl:{bucket}:{key}`` (bucket = route class, key = principal or IP).
RATE_LIMIT_PREFIX: Final = "gamead:rl:"
#: Redis key of a cached terminal record: ``gamead:ad:{id}``.
CACHE_PREFIX: Final = "gamead:ad:"

#: The health check's bucket: under the rate limits' prefix, never a traffic key (those are ``bucket:key``)
HEALTH_BUCKET_KEY: Final = f"{RATE_LIMIT_PREFIX}health"
#: The health check's cache entry: under the cache's prefix, never an ad's (an ad id is a ULID, 26 characters)
HEALTH_CACHE_KEY: Final = f"{CACHE_PREFIX}health"
#: TTL of the check's cache entry, milliseconds
HEALTH_TTL_MS: Final = 10_000

#: KEYS[1] bucket key; ARGV rate, burst, cost. Returns {allowed (0/1), tokens left (string)}.
#: The same arithmetic as :func:`gamead_core.api.ratelimit.take`, with the server's clock. Idle buckets expire
#: once they would be full.
TOKEN_BUCKET_LUA: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""

__all__ = ["CACHE_PREFIX", "HEALTH_BUCKET_KEY", "HEALTH_CACHE_KEY", "HEALTH_TTL_MS", "RATE_LIMIT_PREFIX",
           "TOKEN_BUCKET_LUA"]
