"""What a worker reads beside a work message must never lose or re-run an accepted ad (attack31a F8, F10; attack31b
F7). Real nats-server, API and worker; the bad records and hand-made messages are written with nats-py, as the
drills did. What a user sees: an ad whose record became unreadable still completes (the worker rebuilds the record
from its message), listings answer and name it meanwhile, ``GET /ads/{id}`` answers 409 ``record_unreadable``, the
doctor exits 1 naming it; an ad of a newer gamead (a field this version does not know) is analysed, not terminated;
a copy of a completed ad's message naming its current revision leaves the completed record as it was; a second
message of an ad a live worker is analysing waits for it instead of being called a dead worker's lost attempt."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.embedded import EmbeddedNats
from tests.integration.test_metrics import scrape, total
from tests.ports import start_metered_worker
from tests.support import (
    Proc,
    ad,
    doctor_report,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

ENV = {"GAMEAD_QUEUE__ACK_WAIT": "30", "GAMEAD_DOCTOR__OVERDUE_AFTER": "0"}


async def _kv(url: str, act: Callable[[Any, Any], Any]) -> Any:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        return await act(js, await js.key_value(names.ADS_BUCKET))
    finally:
        await nc.close()


def _put(url: str, ad_id: str, value: bytes) -> None:
    asyncio.run(_kv(url, lambda js, kv: kv.put(ad_id, value)))


def _entry(url: str, ad_id: str) -> tuple[dict[str, Any], int]:
    async def get(js: Any, kv: Any) -> tuple[dict[str, Any], int]:
        entry = await kv.get(ad_id)
        return json.loads(entry.value), entry.revision

    return asyncio.run(_kv(url, get))


def _publish(url: str, ad_id: str, body: bytes, **headers: str) -> None:
    async def pub(js: Any, kv: Any) -> None:
        await js.publish(names.level_subject(3), body, headers={names.HDR_AD_ID: ad_id, **headers})

    asyncio.run(_kv(url, pub))


def _work_messages(url: str) -> int:
    async def count(js: Any, kv: Any) -> int:
        return int((await js.stream_info(names.ADS_STREAM)).state.messages)

    return asyncio.run(_kv(url, count))


def _findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["kind"]: f for f in report["findings"]}


def test_an_unreadable_record_is_rebuilt_from_its_message_and_listings_and_the_doctor_name_it(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before: the worker terminated the valid message as "not an ad" (the ad lost: never completed, never
    dead-lettered), GET /ads and GET /ads/{id} answered 500, the doctor exited 0; an ad with a field of a newer
    gamead was "not an ad" too."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=10) as http:
        plain = http.post("/ads", json=ad("Unreadable plain")).json()["id"]  # first delivery trusts its message
        keyed = http.post("/ads", json=ad("Unreadable keyed"), headers={"Idempotency-Key": "unread-1"}).json()["id"]
        _put(server.url, plain, b"not json at all")
        _put(server.url, keyed, b'{"garbage": true}')
        newer = new_ad_id()  # written by a newer gamead: a field this version does not know, in the ad and beside it
        record = {"id": newer, "status": "queued", "priority": 3,
                  "submittedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                  "ad": ad("Newer gamead", 3, soundtrack="chiptune"), "futureField": {"x": 1}}
        _put(server.url, newer, json.dumps(record).encode())
        _publish(server.url, newer, json.dumps(record).encode())

        got = http.get(f"/ads/{plain}")
        assert got.status_code == 409 and got.json()["error"]["code"] == "record_unreadable", got.text
        assert http.get(f"/ads/{newer}").json()["ad"]["title"] == "Newer gamead"
        page = http.get("/ads").json()
        assert page["unreadable"] == 2 and set(page["unreadableIds"]) == {plain, keyed}, page
        assert {item["id"] for item in page["items"]} == {newer}, page
        report = doctor_report(url, settle=0.3)
        assert not report["ok"], report
        found = _findings(report)["record_unreadable"]
        assert found["count"] == 2 and set(found["sample"]) == {plain, keyed}, found
        assert "rebuilds the record" in found["details"][plain], found

        worker = start_worker(server.url, tmp_path, worker_id="rebuilder", ready=True, **ENV)
        procs.append(worker)
        for ad_id in (plain, keyed, newer):
            assert wait_terminal(http, ad_id)["status"] == "completed", ad_id
        wait_for(lambda: _work_messages(server.url) == 0, what="every work message settled")
        page = http.get("/ads").json()
        assert page["unreadable"] == 0 and len(page["items"]) == 3, page
    log = worker.output()
    assert "not an ad" not in log and "unexpected error" not in log, log[-3000:]
    assert log.count("could not be read") == 2, log[-3000:]
    assert doctor_report(url, settle=0.3)["ok"]


def test_a_copy_of_a_completed_ads_message_naming_its_current_revision_leaves_it_completed(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before (attack31b F7): analysed again, the analysis overwritten and attempts taken from the copy's body."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    procs.append(start_worker(server.url, tmp_path, worker_id="once", ready=True, **ENV))
    with httpx.Client(base_url=url, timeout=10) as http:
        done = http.post("/ads", json=ad("Completed once")).json()["id"]
        assert wait_terminal(http, done)["status"] == "completed"
        before, revision = _entry(server.url, done)
        copy = {k: v for k, v in before.items()
                if k not in ("analysis", "completedAt", "startedAt", "workerId", "delivery")}
        submitted = datetime.fromisoformat(before["submittedAt"].replace("Z", "+00:00")) - timedelta(minutes=5)
        copy.update(status="queued", attempts=0, submittedAt=submitted.isoformat().replace("+00:00", "Z"))
        _publish(server.url, done, json.dumps(copy).encode(),
                 **{"Nats-Msg-Id": f"x{done}", names.HDR_RECORD_REVISION: str(revision)})
        wait_for(lambda: _work_messages(server.url) == 0, what="the copy settled")
        after, again = _entry(server.url, done)
        assert (after, again) == (before, revision), (before, after)
        assert http.get(f"/ads/{done}").json()["status"] == "completed"


def test_a_second_message_of_an_ad_a_live_worker_analyses_waits_for_it(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before (attack31a F10): "its attempt under delivery … never ended and no recovery of that worker's death
    reached it first", and the ad ran a second time beside the first (2 attempts charged)."""
    server = fresh_nats()
    slow = {**ENV, "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "3000", "GAMEAD_WORKER__PROCESSING_MARK_AFTER": "0.1"}
    api, url = start_api(server.url, tmp_path, **slow)
    procs.append(api)
    worker = start_worker(server.url, tmp_path, worker_id="holder", concurrency=2, ready=True, **slow)
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=10) as http:
        ad_id = http.post("/ads", json=ad("Slow twice")).json()["id"]
        record = wait_for(lambda: (r := http.get(f"/ads/{ad_id}").json()).get("status") == "processing" and r,
                          what="the first delivery marked processing")
        queued = {k: v for k, v in record.items() if k not in ("startedAt", "workerId", "delivery")}
        _publish(server.url, ad_id, json.dumps({**queued, "status": "queued", "attempts": 0}).encode(),
                 **{"Nats-Msg-Id": f"copy-{ad_id}"})
        wait_for(lambda: "another delivery of this ad" in worker.output(), what="the copy seen as waiting")
        done = wait_terminal(http, ad_id)
        wait_for(lambda: _work_messages(server.url) == 0, what="both messages settled")
    assert done["status"] == "completed" and done["attempts"] == 1, done
    log = worker.output()
    assert "is running on holder" in log and "never ended" not in log and "runs alone" not in log, log[-3000:]


def test_a_record_a_newer_gamead_wrote_is_left_for_a_newer_worker_not_rebuilt_nor_analysed(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before (review31 R10): the older worker wrote the message's ``queued`` body over the newer record ("could not
    be read … rebuilt from its work message") and analysed the ad again during a rolling upgrade."""
    server = fresh_nats()
    worker, port = start_metered_worker(server.url, tmp_path, worker_id="older", ready=True, **ENV)
    procs.append(worker)
    ad_id = new_ad_id()
    record = {"id": ad_id, "status": "paused", "priority": 3, "attempts": 2,  # a status a newer gamead added
              "submittedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "ad": ad("From the future", 3)}
    _put(server.url, ad_id, json.dumps(record).encode())
    before = _entry(server.url, ad_id)
    _publish(server.url, ad_id, json.dumps({**record, "status": "queued", "attempts": 0}).encode())
    wait_for(lambda: "written by a newer gamead" in worker.output(), what="the newer record named")
    assert _entry(server.url, ad_id) == before  # not written over
    assert _work_messages(server.url) == 1  # left in the queue for a newer worker
    log = worker.output()
    assert "rebuilt" not in log and "not an ad" not in log and "unexpected error" not in log, log[-3000:]
    assert "leaves it" in log and log.count("written by a newer gamead") == 1, log[-3000:]
    # fix32: counted where an operator looks, the worker's /metrics (it was in the process's memory only)
    counted = wait_for(lambda: (m := scrape(f"http://127.0.0.1:{port}/metrics")).get("gamead_ads_left_for_newer_total")
                       and m["gamead_ads_left_for_newer_total"], what="the ad left for a newer worker counted")
    assert total(counted, where="delivery") >= 1, counted
