"""One node's settings never shrink the fleet's DLQ or record bucket (fix32lim, the whole kind of attack31c F6):
a start raises the limits of the DLQ, the audit stream, the record, registry and jobs buckets, never lowers them
without ``queue.lower_limits`` (and then never a count or size below what the store holds); a node whose settings
differ says so (WARNING, ``/readyz``, ``gamead doctor``). Real nats-server, real API nodes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, doctor_report, start_api, wait_for

MIB = 1024 * 1024
FILLER = 24  #: values of 64 KiB written to the record bucket after the ads' records: 1.5 MiB, over a 1 MiB limit
DLQ_ENTRIES = 5


def _fill(url: str) -> None:
    """Five DLQ entries, then 1.5 MiB of other keys in the record bucket (newer than the ads' records)."""

    async def main() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            for i in range(DLQ_ENTRIES):
                await js.publish(names.dlq_subject(f"dead{i}"), json.dumps({"id": f"dead{i}"}).encode())
            kv = await js.key_value(names.ADS_BUCKET)
            for i in range(FILLER):
                await kv.put(f"filler{i}", b"x" * 65536)
        finally:
            await nc.close()

    asyncio.run(main())


def _live(url: str) -> tuple[int, int, int]:
    """(the DLQ's ``max_msgs``, the entries it holds, the record bucket's ``max_bytes``), as the server has them."""

    async def main() -> tuple[int, int, int]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            dlq = await js.stream_info(names.DLQ_STREAM)
            records = await js.stream_info(names.ADS_BUCKET_STREAM)
            return int(dlq.config.max_msgs or 0), int(dlq.state.messages), int(records.config.max_bytes or 0)
        finally:
            await nc.close()

    return asyncio.run(main())


def _topology_check(url: str) -> str:
    return str(httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["topology"])


def test_a_node_with_a_smaller_dlq_or_record_limit_leaves_the_fleets_and_what_they_hold(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before, a `gamead serve` with dlq.max_msgs 2 and records.max_bytes 1 MiB started beside a fleet of the
    defaults shrank the DLQ holding 5 entries to 2 (every new dead letter refused: `dlq.full`) and the record
    bucket holding 1.5 MiB to 1 MiB: JetStream dropped its oldest records, the queued ads' (GET /ads/{id} 404, a
    202 lost). Now the live limits and everything stored stay, the node says so (WARNING, /readyz); with
    queue.lower_limits it lowers them, but never below what they hold; the fleet's node then names the
    difference (/readyz, gamead doctor)."""
    server = fresh_nats()
    fleet, fleet_url = start_api(server.url, tmp_path, GAMEAD_API__TOPOLOGY_CHECK_INTERVAL="0.5")
    procs.append(fleet)
    small_env = {"GAMEAD_DLQ__MAX_MSGS": "2", "GAMEAD_DLQ__MAX_AGE": "3600", "GAMEAD_RECORDS__MAX_BYTES": str(MIB)}
    with httpx.Client(base_url=fleet_url, timeout=10) as client:
        ids = []
        for i in range(3):  # no worker: their records stay, the oldest in the bucket
            resp = client.post("/ads", json=ad(f"Queued {i}"))
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        _fill(server.url)

        small, small_url = start_api(server.url, tmp_path, **small_env)
        procs.append(small)
        assert _live(server.url) == (1_000_000, DLQ_ENTRIES, 4 * 1024**3)
        assert [client.get(f"/ads/{i}").status_code for i in ids] == [200] * 3  # before: 404, dropped
        said = ("dlq.max_msgs: live 1,000,000 on stream GAMEAD_DLQ, this node's 2: kept the live value",
                "dlq.max_age: live 1,209,600 s on stream GAMEAD_DLQ, this node's 3,600 s: kept the live value",
                "records.max_bytes: live 4,294,967,296 on bucket gamead_ads, this node's 1,048,576: kept the live "
                "value")
        wait_for(lambda: all(s in small.output() for s in said), what="the small node's WARNING")
        check = _topology_check(small_url)
        assert check.startswith("degraded: ") and "records.max_bytes: live 4,294,967,296 on bucket gamead_ads, " \
                                                  "this node's 1,048,576" in check, check
        stats = client.get("/v1/stats").json()
        assert stats["dlq"]["full"] is False, stats["dlq"]
        small.stop()

        # the explicit word, but below what they hold: refused, the live values kept, and why
        below, _ = start_api(server.url, tmp_path, GAMEAD_QUEUE__LOWER_LIMITS="true", **small_env)
        procs.append(below)
        wait_for(lambda: "the stream holds 5 messages: lowering it below that would refuse every new dead letter"
                 in below.output() and "the bucket holds" in below.output(), what="the refused lowerings' WARNING")
        assert _live(server.url) == (1_000_000, DLQ_ENTRIES, 4 * 1024**3)
        assert [client.get(f"/ads/{i}").status_code for i in ids] == [200] * 3
        below.stop()

        # the explicit word above what they hold: made; the fleet's node names the difference
        lowered, _ = start_api(server.url, tmp_path, GAMEAD_QUEUE__LOWER_LIMITS="true", GAMEAD_DLQ__MAX_MSGS="10",
                               GAMEAD_RECORDS__MAX_BYTES=str(64 * MIB))
        procs.append(lowered)
        assert _live(server.url) == (10, DLQ_ENTRIES, 64 * MIB)
        assert [client.get(f"/ads/{i}").status_code for i in ids] == [200] * 3
        differs = "dlq.max_msgs: live 10 on stream GAMEAD_DLQ, this node's 1,000,000"
        bucket = "records.max_bytes: live 67,108,864 on bucket gamead_ads, this node's 4,294,967,296"
        # both, in one check: the lowering node updates the stream, then the bucket, and a check of the fleet's node
        # between the two names the first alone (fresh clone of 2a70f227: the bucket's was asserted one read later)
        wait_for(lambda: all(d in _topology_check(fleet_url) for d in (differs, bucket)),
                 what="the fleet's node to name both lowered limits")
        notes: list[dict[str, object]] = doctor_report(fleet_url)["notes"]  # type: ignore[assignment]
        assert differs in json.dumps([n for n in notes if n["kind"] == "topology_limits"])
