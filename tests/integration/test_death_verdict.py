"""One worker death, several recoveries (``gamead up``'s supervisor, the restarted worker adopting its
predecessor, the reaper): they must reach one verdict. Real nats-server, real records; the recoveries are
:func:`gamead_core.worker.reaper.recover` as each of them calls it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import HeldAd, NodeInfo
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper import recover
from tests.support import ad


def _ack(seq: int) -> str:
    """A well-formed ack subject of a level consumer (nobody listens: the ``nak`` goes nowhere)."""
    return f"$JS.ACK.{names.work_stream(0)}.{names.level_consumer(2)}.1.{seq}.{seq}.1.0"


class _UpdatesThenWaits:
    """The real store, except that after its ``after``-th record update the recovery using it waits for
    ``go``: a recovery that is slower than the next one (another process, a slow connection)."""

    def __init__(self, store: AdStore, after: int) -> None:
        self._store = store
        self._left = after
        self.updated = asyncio.Event()
        self.go = asyncio.Event()

    async def get(self, ad_id: str) -> object:
        return await self._store.get(ad_id)

    async def update(self, record: AdRecord, revision: int) -> int:
        result = await self._store.update(record, revision)
        self._left -= 1
        if self._left == 0:
            self.updated.set()
            await self.go.wait()
        return result


def test_a_second_recovery_of_one_death_does_not_charge_an_innocent_ad(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """The reviewer's drill (issue I5): of 600 ads beside 5 crashing ones, 3 ended with ``attempts: 2``.
    A worker died running 3 ads on the fast path (``started`` in its heartbeat, nothing in their records):
    none is charged, each runs alone next. A second recovery of the same death that reads the records
    while the first one is half-way used to count as running only the ads the first had not reached yet;
    with one left it charged that innocent ad (``WorkerLost``, attempts 1; its next run made it 2). Now
    every recovery of that death reaches the first one's verdict: 3 ads, 0 attempts charged."""
    server = fresh_nats()
    settings = GameadSettings()
    t0 = datetime.now(timezone.utc)

    async def main() -> list[AdRecord]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            ids = [f"innocent-{i}" for i in range(3)]
            for i, ad_id in enumerate(ids):
                await store.create(AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=t0,
                                            ad=AdSubmission.model_validate(ad(f"Innocent {i}", 2))))
            dead = NodeInfo(
                id="local-0", role="worker", host="h", pid=4242, version="t", started_at=t0, heartbeat_at=t0,
                holding=[HeldAd(ad_id=ad_id, delivery=f"{i + 1}.1", ack_subject=_ack(i + 1), started=True)
                         for i, ad_id in enumerate(ids)],
            )
            slow = _UpdatesThenWaits(store, after=len(ids) - 1)  # the second finds one ad not reached yet
            first = asyncio.create_task(recover(nc, slow, dead, settings))  # type: ignore[arg-type]
            await asyncio.wait_for(slow.updated.wait(), 10)
            second = await recover(nc, store, dead, settings)  # e.g. the restarted worker adopting its predecessor
            slow.go.set()
            await asyncio.wait_for(first, 10)
            assert second.charged == 0, second
            return [(await store.get(ad_id)).record for ad_id in ids]
        finally:
            await nc.close()

    records = asyncio.run(main())
    assert [r.attempts for r in records] == [0, 0, 0], "an innocent ad was charged for a death beside others"
    assert [r.suspect for r in records] == [True, True, True]
    assert [r.error for r in records] == [None, None, None]
