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


def test_a_beat_frozen_between_its_read_and_its_write_does_not_go_over_the_new_holder(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The second process takes ``dup`` over right after the first's read (as a SIGSTOP there would let it).
    Figures (the first's put refused, the key's holder): with the fix (True, the second's start); without
    (False, the first's: its write went over the second's)."""
    url = fresh_nats().url

    async def scenario() -> tuple[bool, float]:
        nc = await nats.connect(url)
        try:
            first, second = two_processes(nc)
            t0 = time.time()
            mine, theirs = worker_entry("dup", started=t0 - 100), worker_entry("dup", started=t0 - 1)
            await first.put(mine)
            read, took = first.revision, []

            async def frozen_after_read(node_id: str) -> Any:
                got = await read(node_id)
                if not took:  # the first is "frozen" here: the second's claim lands before its write
                    took.append(await second.put_over(theirs, got[0]))
                return got

            first.revision = frozen_after_read  # type: ignore[method-assign]
            refused, holder = await refusal_and_holder(first.put(worker_entry("dup", started=t0 - 100)), second, t0)
            return bool(refused), holder  # the thawed first's next beat
        finally:
            await nc.close()

    refused, holder_started = asyncio.run(scenario())
    assert (refused, round(holder_started)) == (True, -1)


def test_a_beat_whose_last_try_is_frozen_does_not_go_over_the_new_holder(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review46 F2: the beat's last of ``PUT_TRIES`` writes went unconditionally. Its first two tries each see one
    of its own announcements land between their read and write (a busy worker), and it is "frozen" after its last
    read while the second process takes ``dup`` over. Figures (the first's put refused, the key's holder): with the
    fix (True, the second's start); without (False, -100 s: the first's last try wrote over the second's entry,
    which then ended exit 5 at its next beat while the frozen one ran on)."""
    url = fresh_nats().url

    async def scenario() -> tuple[bool, float]:
        nc = await nats.connect(url)
        try:
            first, second = two_processes(nc)
            t0 = time.time()
            await first.put(worker_entry("dup", started=t0 - 100))
            read, reads = first.revision, []

            async def busy_then_frozen(node_id: str) -> Any:
                got = await read(node_id)
                reads.append(got[0])
                if len(reads) < 3:  # its own announcement lands between this read and the write
                    await first.put_over(worker_entry("dup", started=t0 - 100), got[0])
                elif len(reads) == 3:  # frozen here: the second's claim lands before the write
                    await second.put_over(worker_entry("dup", started=t0 - 1), got[0])
                return got

            first.revision = busy_then_frozen  # type: ignore[method-assign]
            refused, holder = await refusal_and_holder(first.put(worker_entry("dup", started=t0 - 100)), second, t0)
            return bool(refused), holder
        finally:
            await nc.close()

    refused, holder_started = asyncio.run(scenario())
    assert (refused, round(holder_started)) == (True, -1)
