"""A heartbeat's read and write of its registry key are one compare-and-set (fresh45c: a process frozen between
them, its id taken over meanwhile, wrote over the new holder's entry when it thawed; the new holder, live, then
found the key another's and ended exit 5, the frozen one ran on: ``test_a_holder_frozen_past_the_watch_ends_when_it
_thaws`` saw (exited, code, holder is the second) = (False, None, False) in a loaded fresh clone)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Callable

import nats

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import ConfigError
from gamead_core.registry.kv import Registry
from tests.integration.test_node_views import worker_entry


def two_processes(nc: nats.NATS) -> tuple[Registry, Registry]:
    """Two registries on ``nc``, as two processes of one id would write (ttl 10 s, beats every 0.5 s)."""
    settings = GameadSettings(registry={"ttl": 10.0, "heartbeat_interval": 0.5}).registry
    return Registry(nc, nc.jetstream(), settings), Registry(nc, nc.jetstream(), settings)


async def refusal_and_holder(attempt: Awaitable[object], registry: Registry, t0: float) -> tuple[str, float]:
    """Await ``attempt`` (a put, a start): its refusal's line (a ``ConfigError``'s message; "" when it went on),
    and the start of the process whose entry ``dup``'s key holds, in seconds from ``t0``."""
    try:
        await attempt
        refused = ""
    except ConfigError as exc:
        refused = exc.message
    _, holder = await registry.revision("dup")
    assert holder is not None
    return refused, holder.started_at.timestamp() - t0


async def beat_with_reads(url: str, on_read: Callable[[int, int, Registry, Registry, float], Awaitable[None]]
                          ) -> tuple[bool, float]:
    """Two processes of ``dup`` on the NATS at ``url``: the first has beaten (started 100 s ago), then beats again,
    ``on_read(n, seq, first, second, t0)`` run after its n-th read of the key (1-based; ``seq``: the key's last
    write it read), before its write. Returns (that beat refused, the start of the key's holder, s from ``t0``)."""
    nc = await nats.connect(url)
    try:
        first, second = two_processes(nc)
        t0 = time.time()
        await first.put(worker_entry("dup", started=t0 - 100))
        read, reads = first.revision, [0]

        async def watched(node_id: str) -> Any:
            got = await read(node_id)
            reads[0] += 1
            await on_read(reads[0], got[0], first, second, t0)
            return got

        first.revision = watched  # type: ignore[method-assign]
        refused, holder = await refusal_and_holder(first.put(worker_entry("dup", started=t0 - 100)), second, t0)
        return bool(refused), holder
    finally:
        await nc.close()


def test_a_beat_frozen_between_its_read_and_its_write_does_not_go_over_the_new_holder(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The second process takes ``dup`` over right after the first's read (as a SIGSTOP there would let it).
    Figures (the first's put refused, the key's holder): with the fix (True, the second's start); without
    (False, the first's: its write went over the second's)."""

    async def frozen_after_read(n: int, seq: int, first: Registry, second: Registry, t0: float) -> None:
        if n == 1:  # the first is "frozen" here: the second's claim lands before its write
            await second.put_over(worker_entry("dup", started=t0 - 1), seq)

    refused, holder_started = asyncio.run(beat_with_reads(fresh_nats().url, frozen_after_read))
    assert (refused, round(holder_started)) == (True, -1)


def test_a_beat_whose_last_try_is_frozen_does_not_go_over_the_new_holder(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review46 F2: the beat's last of ``PUT_TRIES`` writes went unconditionally. Its first two tries each see one
    of its own announcements land between their read and write (a busy worker), and it is "frozen" after its last
    read while the second process takes ``dup`` over. Figures (the first's put refused, the key's holder): with the
    fix (True, the second's start); without (False, -100 s: the first's last try wrote over the second's entry,
    which then ended exit 5 at its next beat while the frozen one ran on)."""

    async def busy_then_frozen(n: int, seq: int, first: Registry, second: Registry, t0: float) -> None:
        if n < 3:  # its own announcement lands between this read and the write
            await first.put_over(worker_entry("dup", started=t0 - 100), seq)
        elif n == 3:  # frozen here: the second's claim lands before the write
            await second.put_over(worker_entry("dup", started=t0 - 1), seq)

    refused, holder_started = asyncio.run(beat_with_reads(fresh_nats().url, busy_then_frozen))
    assert (refused, round(holder_started)) == (True, -1)
