"""The bounds of a manual scaling override (``POST /v1/scale/override``, ``gamead scale set``), in one place for
the API that enforces them and the CLI that refuses past them before sending. No imports: the CLI reads them at
start-up without loading NATS."""

from __future__ import annotations

#: Longest manual override, seconds (a forgotten override must not pin the pool for ever).
MAX_OVERRIDE_SECONDS = 7 * 86400.0
#: Largest worker count an override may hold.
MAX_OVERRIDE_REPLICAS = 10_000

__all__ = ["MAX_OVERRIDE_REPLICAS", "MAX_OVERRIDE_SECONDS"]
