"""A worker that stopped cleanly during a gap in the reaper's reading is not taken for a death (left42 item 3).

The reaper holds its last good view over a gap (its own heartbeat refused, a reconnection: reaper_view) and judges a
held-over node still absent ``registry.ttl`` after it; such a node is skipped when :meth:`Registry.stopped` says it
stopped cleanly. Within ``registry.ttl`` of the stop its entry's delete mark says so; later only the clean-stop note
does (orphan41, :mod:`gamead_core.registry.stops`). orphan41 tested that note for an API (test_reaper_first_look);
this is its worker path in :func:`gamead_core.worker.reaper_loop.run_reaper`. Real nats-server, registry.ttl 1 s; the
workers beat through gamead's own heartbeat loop, each on its own connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import HeldAd, NodeInfo, Registry
from gamead_core.registry.beat import BeatHealth, run_heartbeat
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper_loop import run_reaper
from tests.support import ad, reaper_rounds
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 1.0, "heartbeat_interval": 0.25}})
DEADLINE = 30.0  #: seconds any one wait may take


def _ack(seq: int) -> str:
    """A well-formed ack subject of a level consumer (nobody listens: the ``nak`` goes nowhere)."""
    return f"$JS.ACK.{names.work_stream(0)}.{names.level_consumer(2)}.1.{seq}.{seq}.1.0"


def test_a_worker_stopped_cleanly_during_a_gap_is_not_recovered_and_a_killed_one_is(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """Workers ``clean-1`` and ``dead-1`` each announce one held ad (started on the fast path, as a worker's last
    beat may) and the reaper reads them; then its own heartbeat is refused (a gap: the view is held over), clean-1
    stops cleanly (run_heartbeat's end: note + delete) and dead-1 is killed (its beat cancelled: no delete); once
    both entries and the delete mark are gone (registry.ttl) the reaper's heartbeat works again. The killed worker's
    ad is recovered (its record re-put, "worker dead-1 stopped answering" said once); the clean one's is not (0
    re-put, no line names clean-1). Without the note (Registry.stopped reading the delete mark alone, kv.py before
    95662eac): clean-1's record re-put too and "worker clean-1 stopped answering" said (1 of 1 re-put); with it 0."""
    server = fresh_nats()
    t0 = datetime.now(timezone.utc)

    def lines(node: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if node in r.getMessage()]

    async def main() -> tuple[int, int, int, int]:
        nc = await nats.connect(server.url)
        conns: list[nats.NATS] = [nc]
        try:
            js = nc.jetstream()
            await ensure_topology(js, SETTINGS)
            registry, store = Registry(nc, js, SETTINGS.registry), await AdStore.open(nc, js)
            revisions = {}
            for ad_id in ("ad-of-clean-1", "ad-of-dead-1"):
                revisions[ad_id] = await store.create(AdRecord(
                    id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=t0,
                    ad=AdSubmission.model_validate(ad(f"Held by {ad_id[6:]}", 2))))
            stops = {"clean-1": asyncio.Event(), "dead-1": asyncio.Event()}
            beats = {}
            for seq, node in enumerate(stops, start=1):
                conns.append(worker_nc := await nats.connect(server.url))
                held = [HeldAd(ad_id=f"ad-of-{node}", delivery=f"{seq}.1", ack_subject=_ack(seq), started=True)]

                def snap(node: str = node, held: list[HeldAd] = held) -> NodeInfo:
                    return NodeInfo(id=node, role="worker", host="h", pid=4242, version="t", started_at=t0,
                                    heartbeat_at=datetime.now(timezone.utc), holding=held, ack_wait=30)

                beats[node] = asyncio.create_task(run_heartbeat(
                    Registry(worker_nc, worker_nc.jetstream(), SETTINGS.registry), snap, 0.25, stops[node]))
            own_beat, stop = BeatHealth(), asyncio.Event()
            reaper = asyncio.create_task(run_reaper(nc, js, store, registry, SETTINGS, "r", stop, own_beat=own_beat))

            async def both_listed() -> bool:
                return {n.id for n in await registry.list()} >= set(stops)

            await until(both_listed, timeout=DEADLINE, what="both workers listed")
            await asyncio.to_thread(reaper_rounds, server.url)  # the reaper has read both
            own_beat.failing = True  # the gap: its view is held over, nothing judged
            await asyncio.to_thread(reaper_rounds, server.url, 1)
            stops["clean-1"].set()
            await beats["clean-1"]  # the clean stop: its note put, its entry deleted
            beats["dead-1"].cancel()  # kill -9: no delete, no note; its entry expires
            assert (await registry.lookup("clean-1"))[1], "no delete mark right after the clean stop"

            async def all_gone() -> bool:
                return [await registry.lookup(node) for node in stops] == [(None, False)] * len(stops)

            await until(all_gone, timeout=DEADLINE, what="both entries and the delete mark gone (registry.ttl)")
            own_beat.failing = False  # the gap ends: held-over nodes absent registry.ttl from now are judged

            async def dead_settled() -> bool:
                return (await store.get("ad-of-dead-1")).revision != revisions["ad-of-dead-1"]  # type: ignore

            await until(dead_settled, timeout=DEADLINE, what="the killed worker's ad recovered")
            await asyncio.to_thread(reaper_rounds, server.url)  # clean-1 was judged in that round or the next
            stop.set()
            await asyncio.wait_for(reaper, DEADLINE)
            return (revisions["ad-of-clean-1"], (await store.get("ad-of-clean-1")).revision,  # type: ignore
                    revisions["ad-of-dead-1"], (await store.get("ad-of-dead-1")).revision)  # type: ignore
        finally:
            for conn in conns:
                await conn.close()

    with caplog.at_level(logging.INFO, logger="gamead_core"):
        clean_before, clean_after, dead_before, dead_after = asyncio.run(main())
    assert clean_after == clean_before, "the ad of the cleanly stopped worker was re-put"
    assert lines("clean-1") == [], lines("clean-1")
    assert dead_after != dead_before
    dead = [line for line in lines("dead-1") if line.startswith("worker dead-1 stopped answering")]
    assert len(dead) == 1, lines("dead-1")
