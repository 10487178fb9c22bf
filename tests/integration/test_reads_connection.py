"""lists38 (attack38b F8) on a real ``gamead serve`` and nats-server: an operator's whole-bucket read streams over
the API's reads connection (``gamead-api-reads``, gamead_core.api.read_conn), never over the connection its
submits' publish acks and PING answers come back on (``gamead-api``).

Before, both shared one socket: nats-server pushes an ordered consumer's records up to its flow-control window
(32 MiB a consumer) ahead of anything else on that socket, so while ``GET /ads?limit=500`` scans ran, a submit's
ack waited behind megabytes of records: the drill's 4 concurrent scans over a 170,000-record bucket gave submits
503 ``queue_unavailable`` ("NATS did not answer in time", outages up to 9.1 s) and ``/readyz`` unready 14-31 s
("a PING unanswered for 2 s"), neither process CPU-bound. What nats-server sent each connection is read off its
``/connz`` (``out_bytes``): the figure, before the fix, is the scan's 10,024,000 bytes of records on
``gamead-api`` itself (10,027,145 bytes sent it during the read). Past 64 MiB unsent (4 scans of 40,000 records)
nats-server closed that connection as a slow consumer, losing the acks in flight (lists38 measurement).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.embedded import ANY_PORT, EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.store.ads import encode
from tests.support import Proc, ad, start_api

RECORDS = 4_000  #: records of ~2.6 KB each in the bucket: ~10 MB for one whole scan
MIB = 1024 * 1024


def _record() -> AdRecord:
    body = ad("reads", description="d" * 2000, targetAudience=[f"aud {n}" for n in range(20)])
    return AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                    ad=AdSubmission.model_validate(body))


async def _fill(url: str, count: int) -> int:
    """``count`` records put straight into the ad bucket; their bytes."""
    nc = await nats.connect(url)
    size = 0
    try:
        js = nc.jetstream()
        for _ in range(0, count, 200):
            payloads = [(r.id, encode(r)) for r in (_record() for _ in range(200))]
            size += sum(len(p) for _, p in payloads)
            await asyncio.gather(*(js.publish(names.kv_subject(names.ADS_BUCKET, i), p) for i, p in payloads))
    finally:
        await nc.close()
    return size


def _sent(monitor: int) -> dict[str, int]:
    """What nats-server has sent each client connection of the API, in bytes, by connection name."""
    conns: list[dict[str, Any]] = httpx.get(f"http://127.0.0.1:{monitor}/connz", timeout=10).json()["connections"]
    return {c["name"]: int(c["out_bytes"]) for c in conns if str(c.get("name", "")).startswith("gamead-api")}


def test_a_list_scan_streams_on_the_reads_connection(tmp_path: Path, procs: list[Proc]) -> None:
    """4,000 records of ~2.6 KB (~10 MB) and ``api.list_scan_limit`` 4,000: ``GET /ads?limit=500`` reads them all
    (``scanned`` 4,000), a submit beside it is 202, and nats-server sent the submit path's connection
    (``gamead-api``) under 1 MiB meanwhile, the reads connection at least the records' bytes. Before the fix: no
    reads connection, and ``gamead-api`` got the whole scan (≥ 10 MB) ahead of the submit's ack."""
    server = EmbeddedNats(tmp_path / "nats", monitor_port=ANY_PORT).start()
    monitor = server.monitor_port
    try:
        api, url = start_api(server.url, tmp_path, GAMEAD_API__LIST_SCAN_LIMIT=str(RECORDS))
        procs.append(api)
        size = asyncio.run(_fill(server.url, RECORDS))
        before = _sent(monitor)
        with httpx.Client(base_url=url, timeout=60) as client:
            page = client.get("/ads", params={"limit": 500})
            assert page.status_code == 200, page.text
            assert (page.json()["scanned"], page.json()["count"]) == (RECORDS, 500)
            submitted = client.post("/ads", json=ad("beside a scan"))
            assert submitted.status_code == 202, submitted.text
        after = _sent(monitor)
        main = after["gamead-api"] - before["gamead-api"]
        assert main < MIB, f"the submit path's connection carried {main:,} bytes during a {size:,}-byte scan"
        reads = after.get("gamead-api-reads", 0) - before.get("gamead-api-reads", 0)
        assert reads >= size, f"the reads connection carried {reads:,} bytes of a {size:,}-byte scan"
    finally:
        server.stop()
