"""A DLQ replay/purge by ids (``POST /v1/dlq/replay {"ids": …}``, its dry run and its job) looks its ids up
:data:`~gamead_core.dlq_ops.LOOKUPS_AT_ONCE` at a time, not one after another (flakes52B).

Figure before: the 10,000-id dry run of test_dlq_id_bound made 10,000 round trips in a row: 1.7 s alone, 14.5 and
16.1 s for that test's call at load ~15, past its 120 s at load 35-42 (two fresh clones at once); after, 5.8 and
7.0 s at load ~15. Real nats-server, gamead's DLQ code; the lookups in flight are counted as they start and end.
"""

from __future__ import annotations

import asyncio

import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.dlq_ops import LOOKUPS_AT_ONCE, DlqOps
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueUnavailable
from gamead_core.queue.dlq import Current, DeadLetters
from gamead_core.store.ads import AdStore
from tests.integration.dlq_lane import fill_dead

DEAD = 40  #: ads with an entry


class Counted(DeadLetters):
    """gamead's DLQ reads, with the lookups of :meth:`current` in flight counted (the most at once kept)."""

    def __init__(self, *args: object, fail_on: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.now = self.most = 0
        self.fail_on = fail_on

    async def current(self, ad_id: str) -> Current | None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            if ad_id == self.fail_on:
                raise QueueUnavailable("NATS did not answer in time")
            return await super().current(ad_id)
        finally:
            self.now -= 1


def test_ids_are_looked_up_at_once_in_the_order_given(nats_server: EmbeddedNats) -> None:
    """40 dead ads' ids, 40 ids with no entry between them and every id twice: the entries in the order given, the
    missing ids too, each once; up to LOOKUPS_AT_ONCE lookups were in flight at once (before: 1); a lookup's error
    ends the call as itself (QueueUnavailable), never as an exception group."""

    async def run() -> tuple[list[str], list[tuple[str, int]], list[str], int, str]:
        await fill_dead(nats_server.url, DEAD)
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            dead = [e async for e in DeadLetters(js).entries()]
            ids = [x for e in dead for x in (e.ad_id, new_ad_id())]
            dlq = Counted(js)
            ops = DlqOps(js, AdStore(nc, js), dlq, publish_timeout=5)
            fence = (await js.stream_info(names.DLQ_STREAM)).state.last_seq
            items, missing = await ops.resolve_ids(ids + ids, fence=fence)
            dlq.fail_on = ids[-1]
            try:
                await ops.resolve_ids(ids, fence=fence)
                error = "none"
            except QueueUnavailable as exc:
                error = str(exc)
            return ids, items, missing, dlq.most, error
        finally:
            await nc.close()

    ids, items, missing, most, error = asyncio.run(run())
    assert [ad_id for ad_id, _ in items] == ids[0::2]
    assert missing == ids[1::2]
    assert most == LOOKUPS_AT_ONCE, f"{most} lookups in flight at most"
    assert error == "NATS did not answer in time"
