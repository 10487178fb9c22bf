"""A full store stalls nothing else and says which store it is (attack31a F5, F9).

* F5: with the DLQ at ``dlq.max_msgs``, failing ads whose dead-lettering the DLQ refused held every worker slot
  (their outcome write retried for as long as the DLQ stayed full): nothing else was analysed, the records said
  ``processing``, and stats, doctor and the worker's log blamed nothing or "our storage".
* F9: a full jobs bucket answered 503 ``queue_full`` "the stream is full", the work queue's code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nats.js.errors
import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.integration.test_worker_faults import (
    FAST_REGISTRY,
    LONG_ACK_WAIT,
    Lane,
    _workers,
)
from tests.support import Proc, doctor_report, start_api, wait_for, wait_terminal


@pytest.mark.timeout(240)
def test_ads_the_full_dlq_refuses_give_their_slots_back_and_every_other_ad_is_analysed(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """One worker with 2 slots, a DLQ of 1 entry (full after the first doomed ad) and 4 more doomed ads (permanent
    failures), twice the slots. Before: the 2 slots stayed held by refused outcomes and none of the 5 normal ads
    submitted next completed. Now: every normal ad completes while the DLQ is full; each refused ad is ``queued``
    with its attempt kept (1), its error naming the full DLQ and the setting, the failure it dies with kept; the
    worker's last error, /v1/stats and ``gamead doctor`` (``dlq_full``) say the DLQ is full; once an operator frees
    room, a waiting ad is dead-lettered with its own failure, still charged one attempt."""
    server = fresh_nats()
    env = {"GAMEAD_DLQ__MAX_MSGS": "1", "GAMEAD_WORKER__MAX_ATTEMPTS": "3", **LONG_ACK_WAIT, **FAST_REGISTRY}
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    lane = Lane(server, url, tmp_path, procs)
    try:
        lane.worker("w1", concurrency=2, GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="permanent",
                    GAMEAD_WORKER__FAULTS__MATCH="^Doomed", **env)
        first = lane.submit("Doomed First")
        assert wait_terminal(lane.http, first)["status"] == "dead"
        doomed = [lane.submit(f"Doomed {i}") for i in range(4)]

        def waiting(ad_id: str) -> dict | None:
            record = lane.record(ad_id)
            return record if (record.get("error") or {}).get("errorClass") == "DlqFull" else None

        for ad_id in doomed:
            wait_for(lambda: waiting(ad_id), timeout=60, what=f"doomed ad {ad_id} to wait for room in the DLQ")
        normal = [lane.submit(f"Normal {i}", priority=1 + i % 5) for i in range(5)]
        assert [wait_terminal(lane.http, i, timeout=60)["status"] for i in normal] == ["completed"] * 5

        for ad_id in doomed:
            record = lane.record(ad_id)
            assert record["status"] in ("queued", "processing") and record["attempts"] == 1, record
        record = wait_for(lambda: (r := waiting(doomed[0])) and r["status"] == "queued" and r, timeout=60,
                          what="a doomed ad queued")
        assert "GAMEAD_DLQ" in record["error"]["message"] and "dlq.max_msgs" in record["error"]["message"], record
        assert record["deadLetterError"]["errorClass"] == "PermanentError", record
        assert record["retryAt"], record

        # .get: the API's registry reading may predate w1's first beat by up to one sampler interval (its autoscaler
        # reads the registry at start-up), so w1 may be missing from the first answer
        wait_for(lambda: "DLQ (stream GAMEAD_DLQ) is full" in (_workers(lane).get("w1", {}).get("lastError") or ""),
                 timeout=20, what="the worker's last error to name the full DLQ")
        log = (tmp_path / "worker-w1.log").read_text(errors="replace")
        assert "the DLQ (stream GAMEAD_DLQ) is full" in log and "our storage is failing" not in log, log[-2000:]
        stats = lane.http.get("/v1/stats").json()
        assert stats["dlq"]["full"] is True and stats["dlq"]["maxMsgs"] == 1, stats["dlq"]
        report = doctor_report(url)
        findings = [f for f in report["findings"] if f["kind"] == "dlq_full"]  # type: ignore[union-attr]
        assert findings and not report["ok"], report
        assert "dlq.max_msgs" in findings[0]["notRepairedBecause"], findings
        assert "1 of 1 entries" in findings[0]["details"]["stream GAMEAD_DLQ"], findings

        purged = lane.http.post("/v1/dlq/purge", json={"ids": [first], "confirm": True})
        assert purged.status_code == 202, purged.text
        dead = wait_for(lambda: next((r for i in doomed if (r := lane.record(i))["status"] == "dead"), None),
                        timeout=90, what="a waiting ad dead-lettered once the DLQ had room")
        assert dead["attempts"] == 1 and dead["error"]["errorClass"] == "PermanentError", dead
        assert "deadLetterError" not in dead or dead["deadLetterError"] is None, dead
        entry = lane.http.get(f"/v1/dlq/{dead['id']}").json()
        assert entry["errorClass"] == "PermanentError" and entry["attempts"] == 1, entry
    finally:
        lane.http.close()


def test_a_full_jobs_bucket_answers_jobs_full_naming_the_bucket_and_its_setting(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """F9: the jobs bucket at ``jobs.max_bytes`` (1 MiB here, filled by the test) refuses a new DLQ job. Before: 503
    ``queue_full`` "the stream is full: maximum bytes exceeded", details null (the work queue's code, the work stream
    empty). Now: 503 ``jobs_full`` naming bucket gamead_jobs and jobs.max_bytes, with ``Retry-After``."""
    server = fresh_nats()
    env = {"GAMEAD_JOBS__MAX_BYTES": "1048576", **LONG_ACK_WAIT, **FAST_REGISTRY}
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    lane = Lane(server, url, tmp_path, procs)
    try:
        lane.worker("w1", GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MODE="permanent",
                    GAMEAD_WORKER__FAULTS__MATCH="^Doomed", **env)
        dead = lane.submit("Doomed One")
        assert wait_terminal(lane.http, dead)["status"] == "dead"

        async def fill(js: object) -> int:
            """Fill the bucket to the byte with values of shrinking sizes, each until the bucket refuses it."""
            kv = await js.key_value(names.JOBS_BUCKET)  # type: ignore[attr-defined]
            n = 0
            for size in (200_000, 20_000, 2_000, 200, 20):
                while n < 400:
                    n += 1
                    try:
                        await kv.put(f"fill.{n}", b"x" * size)
                    except nats.js.errors.APIError as exc:
                        assert "maximum bytes exceeded" in (exc.description or ""), exc
                        break
            assert n < 400, "the jobs bucket never refused: jobs.max_bytes not applied"
            return n

        assert lane.js(fill)
        refused = lane.http.post("/v1/dlq/purge", json={"ids": [dead], "confirm": True})
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "jobs_full", error
        assert error["details"] == {"bucket": "gamead_jobs", "setting": "jobs.max_bytes"}, error
        assert "gamead_jobs" in error["message"] and "jobs.max_bytes" in error["message"], error
        assert refused.headers.get("Retry-After"), refused.headers
        assert lane.record(dead)["status"] == "dead"  # nothing was done
    finally:
        lane.http.close()
