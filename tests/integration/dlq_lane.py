"""A lane of its own for DLQ tests: a fresh nats-server, one API, workers on demand; plus the invariant check
every DLQ job test ends with (ARCHITECTURE "Invariants" 1-3, read straight from JetStream)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import orjson
import pytest

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, DlqEntry, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import encode
from tests.support import Proc, ad, start_api, start_worker, wait_for, wait_terminal

MAX_ATTEMPTS = 3
BASE = 0.4
COMMON = {
    "GAMEAD_WORKER__MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "GAMEAD_WORKER__BACKOFF_BASE": str(BASE),
    "GAMEAD_QUEUE__ACK_WAIT": "2",
    "GAMEAD_QUEUE__IDLE_POLL": "0.1",
    "GAMEAD_JOBS__LEASE": "2",
    "GAMEAD_JOBS__FOLLOW_TIMEOUT": "20",
}
POISON = {"GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MATCH": "^Poison"}
DOOMED = {"GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MODE": "permanent",
          "GAMEAD_WORKER__FAULTS__MATCH": "^Doomed"}
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


def made_up_entry(title: str, priority: int = 3) -> dict[str, Any]:
    """A DLQ entry (as `gamead dlq export` writes it) of a new ad: import it to have a dead ad without a worker."""
    ad_id = new_ad_id()
    now = datetime.now(timezone.utc).isoformat()
    return {"adId": ad_id, "title": title, "priority": priority, "attempts": 1,
            "errorClass": "PermanentError", "errorMessage": "made up for a test", "retryable": False,
            "firstFailureAt": now, "lastFailureAt": now, "deadAt": now, "submittedAt": now,
            "ad": ad(title, priority)}


class Lane:
    def __init__(self, nats: EmbeddedNats, url: str, logs: Path, procs: list[Proc]) -> None:
        self.nats, self.url, self.logs, self._procs = nats, url, logs, procs
        # an idle connection is dropped here well before the API's own api.keep_alive_timeout (5 s) closes it: load57,
        # a POST on a connection idle ~5 s (a worker stopped and another started) crossed the API's close of it
        # ("Server disconnected without sending a response"), on a machine at load 35-52
        self.http = httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))
        self._n = 0

    def worker(self, **env: str) -> Proc:
        self._n += 1
        proc = start_worker(self.nats.url, self.logs, worker_id=f"w{self._n}", concurrency=2, **{**COMMON, **env})
        self._procs.append(proc)
        return proc

    def api(self, **env: str) -> tuple[Proc, str]:
        proc, url = start_api(self.nats.url, self.logs, **{**COMMON, **env})
        self._procs.append(proc)
        return proc, url

    def submit(self, title: str, priority: int = 3, **fields: object) -> str:
        resp = self.http.post("/ads", json=ad(title, priority, **fields))
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def dead(self, ad_id: str, timeout: float = 30) -> dict:
        record = wait_terminal(self.http, ad_id, timeout=timeout)
        assert record["status"] == "dead", record
        return record

    def dlq(self, **params: object) -> dict:
        return self.http.get("/v1/dlq", params={"limit": 1000, **params}).json()

    def start_job(self, path: str, body: dict[str, Any], http: httpx.Client | None = None) -> dict:
        resp = (http or self.http).post(path, json=body)
        assert resp.status_code == 202, resp.text
        job = resp.json()
        assert resp.headers["location"] == f"/v1/jobs/{job['id']}"
        return job

    def job_done(self, job_id: str, timeout: float = 60, http: httpx.Client | None = None) -> dict:
        def finished() -> dict | None:
            job = (http or self.http).get(f"/v1/jobs/{job_id}").json()
            return job if job.get("state") in FINISHED else None

        return wait_for(finished, timeout=timeout, interval=0.1, what=f"job {job_id} to end")

    def run_job(self, path: str, body: dict[str, Any], timeout: float = 60) -> dict:
        return self.job_done(self.start_job(path, body)["id"], timeout)


@pytest.fixture
def lane(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> Iterator[Lane]:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **COMMON)
    procs.append(api)
    lane = Lane(server, url, tmp_path, procs)
    yield lane
    lane.http.close()


@pytest.fixture(scope="module")
def shared_lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    """One lane for a whole test module (tests that do not need an empty DLQ of their own)."""
    logs = tmp_path_factory.mktemp("dlq-lane")
    server = EmbeddedNats(logs / "nats").start()
    started: list[Proc] = []
    try:
        api, url = start_api(server.url, logs, **COMMON)
        started.append(api)
        lane = Lane(server, url, logs, started)
        yield lane
        lane.http.close()
    finally:
        for proc in started:
            proc.stop(timeout=10)
        server.stop()


async def _store_view(nats_url: str, ad_ids: list[str]) -> tuple[dict[str, str | None], set[str], Counter[str], int]:
    """(status per ad, ads with a DLQ entry, work-stream messages per ad, the DLQ's last sequence)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        kv = await js.key_value(names.ADS_BUCKET)
        statuses: dict[str, str | None] = {}
        entries: set[str] = set()
        for ad_id in ad_ids:
            try:
                statuses[ad_id] = orjson.loads((await kv.get(ad_id)).value or b"{}").get("status")
            except nats.js.errors.KeyNotFoundError:
                statuses[ad_id] = None
            try:
                await js.get_last_msg(names.DLQ_STREAM, names.dlq_subject(ad_id))
                entries.add(ad_id)
            except nats.js.errors.NotFoundError:
                pass
        work: Counter[str] = Counter()
        state = (await js.stream_info(names.ADS_STREAM)).state
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            try:
                msg = await js.get_msg(names.ADS_STREAM, seq)
            except nats.js.errors.NotFoundError:
                continue
            work[(msg.headers or {}).get(names.HDR_AD_ID, "?")] += 1
        dlq_last = (await js.stream_info(names.DLQ_STREAM)).state.last_seq
        return statuses, entries, work, dlq_last
    finally:
        await nc.close()


def broken_invariants(nats_url: str, ad_ids: list[str]) -> list[str]:
    """Every broken invariant among ``ad_ids``: a completed ad with a message or an entry; a dead ad without
    exactly one DLQ entry or with a work message; a queued/processing ad without exactly one work message or
    with a DLQ entry (a replay that stranded it)."""
    statuses, entries, work, _ = asyncio.run(_store_view(nats_url, ad_ids))
    problems = []
    for ad_id in ad_ids:
        status, entry, msgs = statuses[ad_id], ad_id in entries, work[ad_id]
        if status == "completed" and (entry or msgs):
            problems.append(f"{ad_id} completed with entry={entry} messages={msgs}")
        elif status == "dead" and (not entry or msgs):
            problems.append(f"{ad_id} dead with entry={entry} messages={msgs}")
        elif status in ("queued", "processing") and (msgs != 1 or entry):
            problems.append(f"{ad_id} {status} with entry={entry} messages={msgs}")
        elif status not in ("completed", "dead", "queued", "processing", "failed"):
            problems.append(f"{ad_id} has status {status}")
    return problems


def dlq_last_seq(nats_url: str) -> int:
    return asyncio.run(_store_view(nats_url, []))[3]


#: An ad at every field limit (~12 KB as a DLQ entry)
BIG = AdSubmission(title="T" * 200, description="D" * 2000, genre="g" * 50, target_audience=["a" * 100] * 50,
                   visual_elements=["v" * 100] * 50, call_to_action="Join", duration=15, priority=3)


async def fill_dead(url: str, records: int, entries: int | None = None) -> None:
    """``records`` dead ads of :data:`BIG` written straight to JetStream (gamead's topology made first), the first
    ``entries`` (default all) with their DLQ entry too, as a worker's dead-lettering leaves them."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=30)
        await ensure_topology(js, GameadSettings())
        now = utcnow()
        for i in range(records):
            record = AdRecord(id=new_ad_id(), status=AdStatus.DEAD, priority=3, submitted_at=now, ad=BIG, attempts=3)
            await js.publish_async(f"{names.kv_prefix(names.ADS_BUCKET)}{record.id}", encode(record))
            if entries is None or i < entries:
                entry = DlqEntry(ad_id=record.id, title=BIG.title, priority=3, attempts=3, error_class="PermanentError",
                                 error_message="made up for a test", retryable=False, first_failure_at=now,
                                 last_failure_at=now, dead_at=now, submitted_at=now, ad=BIG)
                await js.publish_async(names.dlq_subject(record.id),
                                       entry.model_dump_json(exclude_none=True, exclude={"seq"}).encode(),
                                       headers={names.HDR_AD_ID: record.id})
            if i % 500 == 499:
                await js.publish_async_completed()
        await js.publish_async_completed()
    finally:
        await nc.close()

