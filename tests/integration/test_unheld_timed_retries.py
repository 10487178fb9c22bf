"""chaos48: the doctor's ``ack_pending_unheld`` note under a steady flow of failing ads, no worker dead.

A retry is ``nak``'ed with a delay and stays ack-pending, held by no worker, until its back-off ends. The check
left out only the timed retries whose record its first look had read as ``queued`` with ``retryAt`` ahead; one
that began after its record was read counted as a dead worker's unannounced delivery (the drill: 150 ads/s, 10 %
of them failing 60 % of their attempts, no worker dead: ``ack_pending_unheld · 32 … a dead worker's last
deliveries``). Now each message whose ``nak`` nats-server announced since the run began is left out too
(:class:`gamead_core.worker.naks_seen.NaksSeen`, as the doctor's run starts it).

A real nats-server; a "worker" (a plain connection) takes 20 deliveries and hands each back with a 60 s delay
after the doctor's first look read their records (here: read none with ``retryAt``); nothing announces holding
them. A delivery taken and never handed back (a dead worker's) is still noted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.doctor.model import Note, ReadStats
from gamead_core.doctor.unheld import Unheld, naks_unheard
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from gamead_core.worker.naks_seen import NaksSeen

LEVEL = 3
RETRIES = 20  #: deliveries handed back with a delay (timed retries the first look did not see)
DEAD = 2  #: deliveries taken and never handed back (a dead worker's unannounced ones)


def test_retries_that_began_after_the_first_look_are_no_dead_workers_deliveries(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Figure before: 20 deliveries nak'ed with a 60 s delay after the first look plus 2 never handed back made the
    note say 22 unheld deliveries; now 2 (the never handed back ones)."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": 120.0}})

    async def scenario() -> tuple[Note, int]:
        nc = await nats.connect(server.url)
        doc = await nats.connect(server.url)
        js, doc_js = nc.jetstream(), doc.jetstream()
        naks = NaksSeen(say=naks_unheard)
        try:
            await ensure_topology(js, settings)
            await naks.start(doc, 5.0)  # as the doctor's run begins, before its first look
            for i in range(RETRIES + DEAD):
                await js.publish(names.level_subject(LEVEL), b"{}", headers={names.HDR_AD_ID: f"ad-{i}"})
            sub = await js.pull_subscribe_bind(names.level_consumer(LEVEL), names.ADS_STREAM)
            msgs = await sub.fetch(RETRIES + DEAD, timeout=10)
            assert len(msgs) == RETRIES + DEAD
            for m in msgs[:RETRIES]:
                await m.nak(delay=60)
            await nc.flush()
            for _ in range(100):  # the advisories arrive after the naks: wait for them, with a deadline
                if len(naks) == RETRIES:
                    break
                await asyncio.sleep(0.05)
            infos = {(lvl, 0): await js.consumer_info(names.ADS_STREAM, names.level_consumer(lvl))
                     for lvl in names.LEVELS}
            assert infos[(LEVEL, 0)].num_ack_pending == RETRIES + DEAD
            unheld = Unheld(doc, doc_js, settings, naks)
            stats, note = ReadStats(), Note("ack_pending_unheld")
            await unheld.first(infos, [], stats)  # the first look read no record with retryAt ahead
            await unheld.confirm(stats, note)
            return note, len(naks)
        finally:
            await naks.stop()
            await doc.close()
            await nc.close()

    note, heard = asyncio.run(scenario())
    assert heard == RETRIES, f"{heard} naks heard of {RETRIES}"
    assert note.count == DEAD, f"{note.count} unheld noted ({note.items}): the {RETRIES} timed retries counted"
