"""left39a item 1 on a real ``gamead serve`` and nats-server: however many whole-stream reads run at once on the
API's reads connection (``gamead-api-reads``), nats-server never closes it as a slow consumer
(:mod:`gamead_core.queue.pull_feed`: each read asks for its messages in pull requests of bounded ``max_bytes``, the
reads of one connection together at most ``CONNECTION_BYTES`` asked for).

Before, each read was an ordered (push) consumer that nats-server fed up to its flow-control window, 32 MiB, before
the client had read any: 8 ``GET /v1/dlq?message=…`` (a search read entry by entry) over a DLQ of 4,000 entries of
~12 KB (48 MB) and a ``GET /ads`` beside them had nats-server log ``"gamead-api-reads" - Slow Consumer Detected:
MaxPending of 67108864 Exceeded`` and close the connection: reads in flight failed, and the DLQ reads that stopped
at their ``dlq.scan_time`` had each been pushed up to 32 MiB they never read. The figure (the session's drill,
``/tmp/left39a-repro/repro.py``): 4 such DLQ reads over 50,000 entries of 4.5 KB and 2 listings of 20,000 records:
the reads connection closed with 120 MB sent, both listings 503 ``scan_incomplete``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gamead_core.embedded import ANY_PORT, EmbeddedNats
from tests.integration.dlq_lane import fill_dead
from tests.support import Proc, start_api

RECORDS = 8_000  #: records of ~12 KB: 96 MB, each listing more than its flow-control window (32 MiB)
ENTRIES = 2_000  #: of them, dead ads with a DLQ entry of ~12 KB (24 MB)
READS = 8  #: DLQ reads at once (dlq.scans 8 below)
LISTS = 2  #: listings at once (api.list_scans, 2)
#: the API's nats.request_timeout (s): a read's stall bound, out of play here (the client waits 120 s for each answer)
STALL = 60

async def _reads(url: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        dlq = [client.get("/v1/dlq", params={"message": f"absent {n}", "limit": 10}) for n in range(READS)]
        lists = [client.get("/ads", params={"limit": 10}) for _ in range(LISTS)]
        return list(await asyncio.gather(*dlq, *lists))


def _closed(monitor: int) -> list[dict[str, Any]]:
    """The API's connections nats-server closed, with why."""
    conns = httpx.get(f"http://127.0.0.1:{monitor}/connz", params={"state": "closed"}, timeout=10).json()
    return [c for c in conns.get("connections") or [] if str(c.get("name", "")).startswith("gamead-api")]


def test_many_big_reads_at_once_never_close_the_reads_connection(tmp_path: Path, procs: list[Proc]) -> None:
    """8 DLQ searches over 48 MB of entries and a listing of 4,000 records at once: every answer 200 (the listing
    complete), no connection of the API closed, no slow consumer in nats-server's log. Before the fix: the
    reads connection closed as a slow consumer (``MaxPending of 67108864 Exceeded``)."""
    server = EmbeddedNats(tmp_path / "nats", monitor_port=ANY_PORT).start()
    monitor = server.monitor_port
    try:
        asyncio.run(fill_dead(server.url, RECORDS, ENTRIES))
        # a listing's stall bound is nats.request_timeout (2 s): at load 35-52 the ten reads at once left a listing
        # 2 s without its first message, 503 scan_incomplete as documented (load57 fc2), not what this test holds
        api, url = start_api(server.url, tmp_path, GAMEAD_DLQ__SCANS=str(READS),
                             GAMEAD_API__LIST_SCAN_LIMIT=str(RECORDS), GAMEAD_NATS__REQUEST_TIMEOUT=str(STALL))
        procs.append(api)
        answers = asyncio.run(_reads(url))
        slow = [line for line in server.log_path.read_text(errors="replace").splitlines() if "Slow Consumer" in line]
        closed = [(c.get("name"), c.get("reason")) for c in _closed(monitor)]
        failed = [(a.url.path, a.status_code, a.text[:200]) for a in answers if a.status_code != 200]
        assert (failed, closed, slow) == ([], [], [])
        assert all(a.json()["complete"] for a in answers[READS:])
    finally:
        server.stop()
