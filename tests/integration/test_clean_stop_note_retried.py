"""A clean stop's note lost on its way is written again within the stop's last writes (reap45 item 2).

:meth:`Registry.stop` put the clean-stop note (bucket ``gamead_stops``) and the delete mark together, once: a note
that failed while the mark landed (NATS slow for a moment at the stop) was logged and never tried again, since the
retry loop (:func:`gamead_core.shutdown.last_writes`) only saw the mark's outcome. The mark tells a clean stop for
``registry.ttl`` only; past it the reaper, finding no note, took the node for one that died unseen and re-put its
backlog (a false alarm and wasted work). Now the note is tried again, like the mark, until both land (each once) or
the stop's time for its last writes ends. Real nats-server, the note's first publish swallowed by a proxy
(:class:`tests.nats_filter.PublishFilter`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

import nats

from gamead_core import clock, names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry import NodeInfo
from tests.integration.test_clean_stop_nats_back import DEADLINE, beating
from tests.nats_filter import PublishFilter
from tests.waits import until

LAST_FOR = 10.0  #: seconds the stop gives its mark and note (a worker's: worker.drain_timeout + 3 s)


def test_a_clean_stop_whose_note_is_lost_once_is_still_noted(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter]) -> None:
    """Node ``note-1`` beats through the proxy; its stop's first note publish is swallowed (its write times out
    after 1 s), its delete mark lands. Once the mark has expired (``registry.ttl`` 2 s), the registry still says
    the process stopped cleanly (:meth:`Registry.stopped`, what the reaper asks before calling a node dead
    unseen). Before (kv.py of 4a4561f8: the note written once): False, 1 publish swallowed and no second; after:
    True, the note written by the second try."""
    server = fresh_nats()
    link = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(link)
    t0 = datetime.now(timezone.utc)

    def me() -> NodeInfo:
        return NodeInfo(id="note-1", role="worker", host="h", pid=4546, version="t", started_at=t0,
                        heartbeat_at=datetime.fromtimestamp(clock.now(), timezone.utc))

    async def main() -> bool:
        nc = await nats.connect(link.url)
        try:
            registry, stop, beat = await beating(nc, me, LAST_FOR)
            link.drop(names.kv_prefix(names.STOPS_BUCKET), count=1)  # the note's first write lost in flight
            stop.set()
            await asyncio.wait_for(beat, DEADLINE)
            assert link.dropped == 1

            async def mark_gone() -> bool:
                return await registry.lookup("note-1") == (None, False)

            await until(mark_gone, timeout=DEADLINE, what="the delete mark gone (registry.ttl)")
            return await registry.stopped(me())
        finally:
            await nc.close()

    assert asyncio.run(main()), "the clean stop's note, lost once, was never written: the reaper would call it a death"
