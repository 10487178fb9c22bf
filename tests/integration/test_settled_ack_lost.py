"""A worker that dies after its ad's outcome was written but before its ``ack`` went out: whoever recovers it
acknowledges that delivery, so the final ad's message leaves the work stream at once (chaos47 F6).

The drill: `gamead up` at 150 ads/s, 50 ms analyses, a worker SIGSTOPped 14 s (`gamead up` kills it at
registry.ttl): `gamead doctor` 15 s later exited 1, `completed_with_message · 1 ad · invariant 2`: the ad was
`completed` under the frozen worker's delivery 3807.1 at 22:55:54.996, its message still in the work stream, and the
recovery said "1 left as they were (settled …)": it waited the consumer's ``ack_wait`` (30 s) for a worker to
acknowledge it unanalysed. Real nats-server and API; the dying worker is a connection that pulls the ad, writes its
completed record under that delivery, announces it held and closes without acknowledging (as a SIGKILL would).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdStatus, utcnow
from gamead_core.registry import HeldAd, NodeInfo, Registry
from gamead_core.registry.wire import CREATE_FENCE
from gamead_core.store.ads import AdStore
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.reaper import recover_exited
from tests.support import Proc, ad, assert_doctor_clean, start_api

ACK_WAIT = 120.0  #: seconds: far beyond the test's deadline, so only an ack at the recovery passes it
LEVEL = 3


def test_a_dead_workers_ad_completed_under_its_delivery_is_acknowledged_by_the_recovery(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT}})
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__ACK_WAIT=str(int(ACK_WAIT)))
    procs.append(api)

    async def die_after_the_write() -> str:
        import httpx  # noqa: PLC0415 - the API's answer, then the dying worker's steps
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            answer = await client.post("/ads", json=ad("Written Not Acked", LEVEL))
            assert answer.status_code == 202, answer.text
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        sub = await js.pull_subscribe_bind(names.level_consumer(LEVEL), names.ADS_STREAM)
        [msg] = await sub.fetch(1, timeout=10)
        ad_id = msg.headers[names.HDR_AD_ID]
        delivery = delivery_id(msg.metadata.sequence.stream, 1)
        now = utcnow()
        await Registry(nc, js, settings.registry).put(NodeInfo(
            id="local-7", role="worker", host="h", pid=4701, version="t", started_at=now, heartbeat_at=now,
            holding=[HeldAd(ad_id=ad_id, delivery=delivery, ack_subject=msg.reply, started=True)],
            ack_wait=ACK_WAIT, fence=CREATE_FENCE))
        store = await AdStore.open(nc, js)
        current = await store.get(ad_id)
        record = current.record
        await store.update(record.model_copy(update={
            "status": AdStatus.COMPLETED, "attempts": 1, "delivery": delivery, "worker_id": "local-7",
            "started_at": now, "completed_at": utcnow(), "analysis": analyze(record.ad)}), current.revision)
        await nc.close()  # killed before its ack: no ack, no nak, its entry left
        nc = await nats.connect(server.url)
        try:  # what gamead up's supervisor does when it sees the process end
            await recover_exited(nc, nc.jetstream(), settings, "local-7", 4701)
        finally:
            await nc.close()
        return ad_id

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"):
        asyncio.run(die_after_the_write())
    said = [r.getMessage() for r in caplog.records if "worker local-7 died" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        "worker local-7 died holding 1 announced ad(s), 0 of them running: none charged; 0 handed back, 1 "
        "acknowledged (their outcome was written; their ack was not sent); "), said
    # what an operator runs after the crash: every invariant holds (no final ad's message left in the work stream)
    assert_doctor_clean(url, timeout=15)
