"""Before a suspect ad runs alone, every ad its worker holds is in the registry, at the server (crashflake50).

A suspect ad may crash its worker (it ran beside a crash; a poison ad runs alone each time until it ends dead). The
held-ads announcement is an unconfirmed publish; the ad's own record write (``settle.begin``) goes after it on the
same connection, so the server has the announcement of what was held before that write, but not of the ads a start
step took while the write was answered (a pull under way when the ad began waiting for its gate). In the crash-loop
test (tests/integration/test_worker_faults.py) three innocent ads taken 1 ms before the poison's crash were never
in the worker's registry entry; its recovery knew nothing of them and they waited ack_wait (300 s).

:func:`confirm_held` announces, then waits for nats-server to answer a ``PING`` sent after the announcement (it
has every message sent before; :func:`gamead_core.queue.flush_all.flush_all`: nats-py's own flush sent its ``PING``
ahead, flakes51B), again while a start step held or let go of ads meanwhile (at most :data:`ROUNDS` times); the
attempt starts right after it, with no await between. Alone, it could not cover an ad delivered to a live long poll
of the worker in its last milliseconds, not yet read (the recovery line's "last moments"): :mod:`.alone` first waits
until no pull request of the worker is at the server (lastmoments51).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client as NATS

from gamead_core.queue.flush_all import flush_all
from gamead_core.worker.held import HeldAds

#: Announce-and-confirm rounds at most (a start step between each: rare; a worker pulls nothing while it runs alone)
ROUNDS = 5


async def confirm_held(held: HeldAds, announce: Callable[[], Awaitable[None]], nc: NATS | None,
                       timeout: float) -> bool:
    """Announce ``held`` (``announce``) and wait until the server has it (``nc``'s ``PING`` answered within
    ``timeout`` s), again while the ledger changed meanwhile. True when confirmed; False (nothing raised) when NATS
    did not answer in time, or there is no connection: the attempt goes on, as before."""
    for _ in range(ROUNDS):
        seen = held.changes
        await announce()
        if nc is None:
            return False
        try:
            await flush_all(nc, timeout)  # nc.flush's PING would go out ahead of the announcement
        except (nats.errors.Error, asyncio.TimeoutError):
            return False
        if held.changes == seen:
            return True
    return False


__all__ = ["ROUNDS", "confirm_held"]
