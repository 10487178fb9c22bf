"""A recovery hands a dead worker's ads back (``nak``) together, after it wrote every record (crashflake50).

The poison-pill crash-loop test at load 20-30 (tests/integration/test_worker_faults.py): a recovery wrote and handed
back 4 ads one by one, tens of ms apart. The first (the poison) went at once to an idle worker's long poll; that
worker put its long poll back and crashed on it 40 ms later, while the recovery wrote the next record; the next ad's
``nak`` then went to the long poll of the dying worker, unread (never in its inbox), and the ad waited the consumer's
ack_wait (300 s): ``queued`` past the test's 180 s deadline. Which ad lands where in those milliseconds is a race
no test can hold still, so this one checks the order on the wire that closes it: every record write of a recovery,
then its ``nak``s, nothing between them. Real nats-server, real records, a plain subscriber watching."""

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

SENTINEL = "crashflake50.sentinel"


def _ack(seq: int) -> str:
    """A well-formed ack subject of a level consumer (no such delivery: the ``nak`` changes nothing there)."""
    return f"$JS.ACK.{names.work_stream(0)}.{names.level_consumer(2)}.1.{seq}.{seq}.1.0"


def test_a_recovery_hands_back_its_ads_only_after_writing_every_record(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    server = fresh_nats()
    settings = GameadSettings()
    t0 = datetime.now(timezone.utc)
    ids = [f"held-{i}" for i in range(4)]

    async def main() -> list[str]:
        nc, watcher = await nats.connect(server.url), await nats.connect(server.url)
        seen: list[str] = []
        done = asyncio.Event()

        async def note(msg: nats.aio.msg.Msg) -> None:
            if msg.subject == SENTINEL:
                done.set()
            elif msg.subject.startswith("$JS.ACK."):
                seen.append("nak")
            elif any(msg.subject.endswith(ad_id) for ad_id in ids):
                seen.append("write")

        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            for i, ad_id in enumerate(ids):
                await store.create(AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=t0,
                                            ad=AdSubmission.model_validate(ad(f"Held {i}", 2))))
            for subject in ("$KV.>", "$JS.ACK.>", SENTINEL):  # one connection: what it gets comes in server order
                await watcher.subscribe(subject, cb=note)
            await watcher.flush()
            dead = NodeInfo(  # it died running all four (none charged) just after its last heartbeat
                id="local-0", role="worker", host="h", pid=4242, version="t", started_at=t0,
                heartbeat_at=datetime.now(timezone.utc),
                holding=[HeldAd(ad_id=ad_id, delivery=f"{i + 1}.1", ack_subject=_ack(i + 1), started=True)
                         for i, ad_id in enumerate(ids)],
            )
            report = await recover(nc, store, dead, settings)
            assert report.handed_back == 4 and report.charged == 0, report
            await nc.publish(SENTINEL, b"")  # after the recovery's last message, on its connection
            await asyncio.wait_for(done.wait(), 10)
            return seen
        finally:
            await nc.close()
            await watcher.close()

    seen = asyncio.run(main())
    assert seen == ["write"] * 4 + ["nak"] * 4, seen
