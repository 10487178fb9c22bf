"""Read-through cache of terminal ad records for ``GET /ads/{id}``.

Only *final* records are ever stored — ``completed`` and ``failed`` — because nothing moves a record out
of those statuses, so a hit can never show an out-of-date status. ``dead`` is terminal too, but a DLQ replay
moves it back to ``queued``; caching it would need an invalidation that races with concurrent reads (a read
of the old ``dead`` record can re-fill the cache just after the replay deleted it), so dead records are
always read from the store. Nothing is ever invalidated: no record leaves ``completed``/``failed`` (should
one ever, add the invalidation with it); the TTL (``cache.ttl``) bounds the age of any entry.

With ``redis.url`` set the cache is shared by every API node of the deployment (key ``gamead:ad:{scope}:{id}``,
``scope`` the record bucket's creation time, :attr:`~gamead_core.store.ads.AdStore.scope`): another deployment
using the same Redis (a second ``gamead up`` on its own NATS) has its own keys. Before (attack59) the key was
``gamead:ad:{id}``, and a stack answered ``GET /ads/{id}`` 200 with another stack's completed ad that its own
``GET /ads`` did not list. Until the scope is known (no record read through this node yet, or the bucket missing)
and while the Redis breaker is open the cache is bypassed. Unset, a bounded in-process ``cachetools.TTLCache`` takes
its place (one node; least recently used entries go first when it is full), its keys scoped alike. The scope follows
the bucket (:meth:`~gamead_core.store.ads.AdStore.follow`, each topology check): made again under a running node
(deleted by hand, a wipe), its ads are never answered from the old bucket's entries (leftout60: 200 ``X-Cache: hit``
with a completed ad the store no longer held, for ``cache.ttl``; a resent ``Idempotency-Key``'s new ad, same id,
read as the old one's completed record).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache

from gamead_core.models import AdRecord
from gamead_core.redis_calls import CACHE_PREFIX
from gamead_core.redis_link import RedisLink
from gamead_core.store.ads import FINAL_STATUSES  # statuses no record ever leaves (not dead: replay leaves it)

#: Redis key of a cached terminal record: ``gamead:ad:{scope}:{id}``.
KEY_PREFIX = CACHE_PREFIX


def cache_key(ad_id: str, scope: str | None = None) -> str:
    """The key of ``ad_id``'s entry in the records bucket ``scope`` (None: unknown, in this process's own cache)."""
    return f"{KEY_PREFIX}{ad_id}" if scope is None else f"{KEY_PREFIX}{scope}:{ad_id}"


class AdCache:
    """Cache of serialized final records, with hit/miss counters for ``/v1/stats``."""

    def __init__(
        self, link: RedisLink | None, ttl: float, *, max_local: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.link = link
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self._local: TTLCache[str, bytes] | None = (
            TTLCache(maxsize=max_local, ttl=ttl, timer=clock) if link is None else None
        )
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self.bypassed = 0  #: reads while Redis was unavailable (served from the store, not counted as misses)
        self._scope: Callable[[], str | None] = lambda: None  #: the record bucket's (the module doc): :meth:`follow`

    @property
    def scope(self) -> str | None:
        """The records bucket's scope the keys are in now (None: unknown; the Redis cache is then bypassed)."""
        return self._scope()

    def follow(self, store: Any) -> None:
        """Key the entries by ``store``'s scope (:attr:`~gamead_core.store.ads.AdStore.scope`) as it is at each
        call from now on, hits included: it changes when the bucket is made again (the module doc)."""
        self._scope = lambda: store.scope

    @property
    def backend(self) -> str:
        return "memory" if self.link is None else "redis"

    async def get(self, ad_id: str) -> bytes | None:
        """The cached JSON of ``ad_id`` (always a completed or failed record), or None."""
        key = cache_key(ad_id, self.scope)  # in process too: a bucket made again is another scope
        if self._local is not None:
            body = self._local.get(key)
        else:
            assert self.link is not None
            if not self.link.usable or self.scope is None:
                self.bypassed += 1
                return None
            missing = object()
            got = await self.link.guarded(lambda r: r.get(key), missing)
            if got is missing:
                self.bypassed += 1
                return None
            body = got  # type: ignore[assignment]
        if body is None:
            self.misses += 1
            return None
        self.hits += 1
        return body

    async def put(self, record: AdRecord, body: bytes) -> None:
        """Store ``body`` (the JSON of ``record``) if, and only if, its status is final."""
        if record.status not in FINAL_STATUSES:
            return
        key = cache_key(record.id, self.scope)
        if self._local is not None:
            self._local[key] = body
            self.stores += 1
            return
        assert self.link is not None
        if not self.link.usable or self.scope is None:
            return
        if await self.link.guarded(lambda r: r.set(key, body, px=self._ttl_ms), False):
            self.stores += 1

    def snapshot(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {
            "backend": self.backend,
            "hits": self.hits,
            "misses": self.misses,
            "hitRatio": round(self.hits / lookups, 4) if lookups else None,
            "stores": self.stores,
            "bypassed": self.bypassed,
            "ttlSeconds": self.ttl,
            "localEntries": len(self._local) if self._local is not None else None,
        }


def redis_stats(app: Any) -> dict[str, Any]:
    """Counters for ``/v1/stats``: ``cache`` (hits, misses…), ``redis`` (link and breaker), ``ratelimit``."""
    state = app.state
    cache: AdCache | None = getattr(state, "cache", None)
    link: RedisLink | None = getattr(state, "redis", None)
    limiter = getattr(state, "limiter", None)
    if link is None:
        redis: dict[str, Any] = {"status": "disabled", "url": None}
    else:
        redis = {"status": link.status(), "url": link.url, "breaker": link.breaker.snapshot()}
    return {
        "cache": cache.snapshot() if cache is not None else None,
        "redis": redis,
        "ratelimit": limiter.snapshot() if limiter is not None else None,
    }
