"""Is a Redis/Valkey full for the next write? (:func:`full_for_writes`), from its ``INFO memory``.

With ``maxmemory`` set and ``maxmemory-policy noeviction``, Redis refuses every write (``OOM``) while the memory it
counts (``used_memory`` less ``mem_not_counted_for_evict``: replication and AOF buffers) is over ``maxmemory``, and
takes one that arrives while it is under, however large. So a health check whose own keys expire (10 s TTL) frees
just enough room for its next writes, which pass and fill it again: ``/readyz`` said ``redis: ok`` for 40 s while a
fresh ``SET`` got ``OOM`` (attack34a's near-finding). Read after the check's own writes, this tells. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def full_for_writes(info: Mapping[str, Any]) -> str | None:
    """Why the next write would be refused ``OOM``, from ``INFO memory`` read after a write (e.g. ``used_memory
    3145812 bytes, at or over maxmemory 3145728 with noeviction``); None when it would be stored (no ``maxmemory``,
    an evicting policy, or room left). Fields missing or not numbers: None (nothing known)."""
    try:
        limit = int(info.get("maxmemory") or 0)
        counted = int(info.get("used_memory") or 0) - int(info.get("mem_not_counted_for_evict") or 0)
    except (TypeError, ValueError):
        return None
    if limit <= 0 or str(info.get("maxmemory_policy")) != "noeviction" or counted < limit:
        return None
    return f"used_memory {counted} bytes, at or over maxmemory {limit} with noeviction"
