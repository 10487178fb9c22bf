"""API nodes and workers whose host clocks are off nats-server's (attack33a F1, F3, F5, F6, F11), on one NATS:
what each answers is on nats-server's clock, and the skew is reported (registry entry, ``/v1/workers``, ``gamead
workers``, ``/v1/stats``, ``gamead doctor`` warning ``clock_offset``, the node's log) instead of misjudged. The skew
comes from tests/skewed_gamead.py (the process's time.time off by N seconds, its monotonic clock true).

One stack for the module: NATS, a true-clock API node and one 10 min behind; the tests add a skewed worker or a
node ahead for as long as they need it."""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import Conflict
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobPhase, JobState, Selection
from gamead_core.jobs.store import JobStore
from gamead_core.models import utcnow
from tests.support import (
    Proc,
    ad,
    clean_env,
    run_gamead,
    start_api,
    on_a_free_port,
    serve_ready,
    wait_for,
    wait_worker_ready,
)

SKEWED = str(Path(__file__).resolve().parents[1] / "skewed_gamead.py")
BEHIND = -600.0  #: the slow API node's host clock, seconds
ENV = {"GAMEAD_REGISTRY__TTL": "4", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "1", "GAMEAD_RATELIMIT__ENABLED": "false",
       "GAMEAD_AUTOSCALER__BACKEND": "none", "GAMEAD_AUTOSCALER__INTERVAL": "2",  # every API node competes: ttl 6 s
       "GAMEAD_JOBS__LEASE": "6", "GAMEAD_JOBS__MAX_RESUMES": "0"}  # a job taken over ends: nothing runs


@dataclass
class Stack:
    root: Path
    nats: EmbeddedNats
    api: Proc
    url: str  #: the true-clock API node
    slow: Proc | None = None
    slow_url: str = ""  #: the API node 10 min behind

    def skewed(self, name: str, skew: float, *args: str) -> Proc:
        return Proc(name, [sys.executable, SKEWED, str(skew), *args],
                    clean_env(GAMEAD_NATS__URL=self.nats.url, **ENV), self.root / f"{name}.log")

    def start_skewed(self, name: str, skew: float, *args: str) -> Proc:
        return self.skewed(name, skew, *args).start()

    def skewed_api(self, name: str, skew: float) -> tuple[Proc, str]:
        return on_a_free_port(lambda port: serve_ready(self.skewed(name, skew, "serve", "--port", str(port)), port))

    def nodes(self, url: str | None = None) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in httpx.get(f"{url or self.url}/v1/workers", timeout=10).json()["items"]}

    def entry_of(self, proc: Proc) -> dict[str, Any] | None:
        """The registry entry (as the true node lists it) of ``proc``, once it carries its clock's offset."""
        return next((n for n in self.nodes().values() if n["pid"] == proc.pid
                     and n.get("clockOffsetSeconds") is not None), None)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("clock-api")
    server = EmbeddedNats(root / "nats").start()
    api, url = start_api(server.url, root, **ENV)
    s = Stack(root, server, api, url)
    try:
        s.slow, s.slow_url = s.skewed_api("api-slow", BEHIND)
        slow = s.slow
        wait_for(lambda: s.entry_of(slow), timeout=30, what="the slow node's entry with its offset")
        yield s
    finally:
        for proc in (s.slow, api):
            if proc is not None:
                proc.stop()
        server.stop()


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_worker_5_min_behind_shows_its_offset_and_its_own_uptime_and_the_doctor_warns(stack: Stack) -> None:
    """F1: UP was ``5m14s`` for a worker started 12 s before (now − its host-clock startedAt); the skew was said
    nowhere. Now its entry carries the offset, ``gamead workers`` says it in a line, UP is its monotonic uptime, its
    log warns once, and ``gamead doctor`` warns ``clock_offset`` (exit 0)."""
    worker = stack.start_skewed("wbehind", -300.0, "worker", "--id", "wbehind", "--concurrency", "1")
    try:
        wait_worker_ready(worker)
        node = wait_for(lambda: stack.entry_of(worker), timeout=30, what="the worker's entry with its offset")
        assert node["clockOffsetSeconds"] == pytest.approx(300.0, abs=2.0), node
        assert 0 <= node["clockErrorSeconds"] < 1.0, node
        assert node["state"] not in ("stuck", "late"), node
        assert node["uptimeSeconds"] < 60, node  # before: ≥ 300 (the skew)
        cli = run_gamead("workers", "--api", stack.url, env=clean_env())
        assert cli.returncode == 0, cli.stderr
        said = " ".join(cli.stdout.split())  # the note lines as one text (a narrow terminal wraps them)
        assert re.search(r"wbehind: host clock 30\d\.\d s behind nats-server's \(corrected: gamead uses "
                         r"nats-server's time\)", said), cli.stdout
        assert re.search(r"host clock 60\d\.\d s behind", said), cli.stdout  # the slow API node's too
        row = next(line for line in cli.stdout.splitlines() if line.lstrip("│ ").startswith("wbehind"))
        assert not re.search(r"\b[4-9]m\d\ds\b", row), row  # UP: seconds, not 5 min
        warned = [json.loads(line) for line in worker.output().splitlines()
                  if line.startswith("{") and "host clock" in line]
        assert len(warned) == 1 and warned[0]["level"] == "WARNING", warned
        assert warned[0]["clock_offset_seconds"] == pytest.approx(300.0, abs=2.0), warned
        doctor = run_gamead("doctor", "--api", stack.url, "-o", "json", env=clean_env(), timeout=120)
        report = json.loads(doctor.stdout)
        (found,) = [f for f in report["findings"] if f["kind"] == "clock_offset"]
        assert found["severity"] == "warning" and "wbehind" in found["sample"], found
        assert "300" in found["details"]["wbehind"] or "30" in found["details"]["wbehind"], found
        assert doctor.returncode == (0 if all(f["severity"] == "warning" for f in report["findings"]) else 1)
    finally:
        worker.stop()


def test_the_oldest_age_is_the_same_through_a_node_10_min_behind(stack: Stack) -> None:
    """F3: ``oldestAgeSeconds`` read 0.3 s through a node 5 min behind, 369 s through one ahead, 69 s through a true
    one, at once; the slow node said "not over horizon". Now every node ages on nats-server's clock. Also
    ``/v1/stats`` carries the answering node's ``clockOffsetSeconds``."""
    sent = httpx.post(f"{stack.url}/ads", json=ad("oldest through a slow node", priority=5), timeout=10)
    assert sent.status_code == 202, sent.text

    def p5(url: str) -> float | None:
        levels = httpx.get(f"{url}/v1/stats", timeout=10).json()["queue"]["levels"]
        return next(lv["oldestAgeSeconds"] for lv in levels if lv["priority"] == 5)

    wait_for(lambda: (p5(stack.url) or 0) >= 4.0, timeout=30, what="a P5 ad 4 s old")
    true_age, slow_age = p5(stack.url), p5(stack.slow_url)
    assert true_age is not None and slow_age is not None
    assert abs(slow_age - true_age) < 2.0, (true_age, slow_age)  # before: 0.0 through the slow node
    slow = httpx.get(f"{stack.slow_url}/v1/stats", timeout=10).json()
    assert slow["clockOffsetSeconds"] == pytest.approx(-BEHIND, abs=2.0), slow["clockOffsetSeconds"]
    assert abs(_at(slow["generatedAt"]) - time.time()) < 5.0, slow["generatedAt"]  # before: 10 min ago


def test_an_ad_submitted_through_a_node_10_min_behind_is_stamped_now_and_dated_now(stack: Stack) -> None:
    """F11: its ``submittedAt`` and its id's ULID time were 10 min old (16th of 343 in "newest first"). Also the
    HTTP ``Date`` header (RFC 9110: the origin server's clock) is nats-server's time, not the host's."""
    with httpx.Client(base_url=stack.slow_url, timeout=10) as http:
        sent = http.post("/ads", json=ad("via the slow node", priority=2))
        assert sent.status_code == 202, sent.text
        record = http.get(f"/ads/{sent.json()['id']}").json()
    now = time.time()
    assert abs(_at(record["submittedAt"]) - now) < 5.0, record["submittedAt"]
    ulid_ms = 0
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    for ch in record["id"][:10]:
        ulid_ms = ulid_ms * 32 + alphabet.index(ch)
    assert abs(ulid_ms / 1000 - now) < 5.0, record["id"]
    # ready only once it sampled nats-server's clock: no ad a load balancer sends it is stamped on its host clock
    assert httpx.get(f"{stack.slow_url}/readyz", timeout=10).json()["checks"]["clock"] == "ok"
    date = email.utils.parsedate_to_datetime(sent.headers["date"]).timestamp()
    assert abs(date - now) < 5.0, sent.headers["date"]  # before: uvicorn's, the host clock's (10 min behind)


def test_an_override_for_5_min_set_through_a_node_10_min_behind_stands(stack: Stack) -> None:
    """F6: ``scale set 3 --for 5m`` through a node 10 min behind answered "until <5 min ago>" and never applied."""
    cli = run_gamead("scale", "set", "2", "--for", "5m", "--api", stack.slow_url, "-o", "json", env=clean_env())
    assert cli.returncode == 0, cli.stderr
    try:
        status = httpx.get(f"{stack.url}/v1/scale", timeout=10).json()  # as the true node sees it
        override = status["override"]
        assert override is not None and override["replicas"] == 2, status
        assert 280 < _at(override["until"]) - time.time() <= 300, override
    finally:
        httpx.delete(f"{stack.url}/v1/scale/override", timeout=10)


def test_a_node_1_min_ahead_takes_neither_a_live_runners_job_nor_the_live_autoscaler_lease(stack: Stack) -> None:
    """F5: a node whose host clock is 1 min ahead took, at its start, a live runner's DLQ job ("its runner's lease
    expired") and the autoscaler lease of the live leader. Here the test is the job's live runner (renewing its
    lease every 0.5 s, jobs.lease 6 s); the true node leads the autoscaler. The node ahead starts, samples
    nats-server's clock, and through several renewals of both leases takes neither."""
    leader = wait_for(lambda: (httpx.get(f"{stack.url}/v1/scale", timeout=10).json().get("leader") or {}).get("id"),
                      timeout=30, what="an autoscaler leader")

    async def main() -> tuple[Job, str | None]:
        nc = await nats.connect(stack.nats.url)
        store = await JobStore.open(nc.jetstream())
        job = Job(id=new_job_id(), kind=JobKind.PURGE, state=JobState.RUNNING, selection=Selection(mode="all"),
                  started_by="op", created_at=utcnow(), runner="liverunner", lease_until=time.time() + 6,
                  lease_ttl=6, phase=JobPhase.ACTING)
        revision = await store.create(job)
        ahead: Proc | None = None
        try:
            async def renew(times: int) -> None:
                nonlocal revision, job
                for _ in range(times):
                    job, revision = await store.get(job.id)
                    if job.runner != "liverunner":
                        return
                    job.lease_until = time.time() + 6
                    revision = await store.update(job, revision)
                    await asyncio.sleep(0.5)

            await renew(2)
            ahead = stack.start_skewed("api-ahead", 60.0, "serve", "--port", "0")
            deadline = time.monotonic() + 40
            while stack.entry_of(ahead) is None and time.monotonic() < deadline:  # up, clock sampled
                await renew(1)
            assert stack.entry_of(ahead) is not None, ahead.output()[-2000:]
            await renew(12)  # 6 s: three of its sweeps (every 2 s), three autoscaler lease renewals
            job, _ = await store.get(job.id)
            holder = (httpx.get(f"{stack.url}/v1/scale", timeout=10).json().get("leader") or {}).get("id")
            return job, holder
        finally:
            if ahead is not None:
                ahead.stop()
            for _ in range(5):  # end the job: nothing of this test left running
                job, revision = await store.get(job.id)
                if job.state.terminal:
                    break
                job.state, job.phase, job.finished_at = JobState.CANCELLED, JobPhase.DONE, utcnow()
                try:
                    await store.update(job, revision)
                except Conflict:
                    continue
            await nc.close()

    job, holder = asyncio.run(main())
    assert job.runner == "liverunner" and job.resumes == 0, job  # before: taken ("its runner's lease expired")
    assert holder == leader, holder  # before: the node ahead took the autoscaler lease at its start



def test_an_api_5_min_ahead_counts_the_completions_of_a_worker_started_after_it(stack: Stack) -> None:
    """review33 R6: the sampler's start was read on the API's host clock before its first clock sample, and kept:
    for 5 min an API 5 min ahead took every worker started after it for one started before, and dropped what it had
    completed when the API first read it (``completedPerSec`` 0 while 20 ads completed; the autoscaler's drain
    figures too). The API is frozen (SIGSTOP) while the worker starts and completes them, so its first read of the
    worker already carries the 20."""
    api, url = stack.skewed_api("api-ahead-count", 300.0)
    worker = None

    def rates() -> dict[str, Any] | None:
        stats = httpx.get(f"{url}/v1/stats", timeout=10).json()
        return stats["rates"] if stats["nodes"].get("readAt") and stats["rates"]["completedPerSec"] is not None \
            else None

    try:
        wait_for(rates, timeout=30, what="the API's first completion rate")
        api.signal(signal.SIGSTOP)
        try:
            worker = stack.start_skewed("wcount", 0.0, "worker", "--id", "wcount", "--concurrency", "2")
            wait_worker_ready(worker)
            with httpx.Client(base_url=stack.url, timeout=10) as http:
                for i in range(20):
                    assert http.post("/ads", json=ad(f"counted {i}")).status_code == 202
            wait_for(lambda: stack.nodes().get("wcount", {}).get("processed", 0) >= 20, timeout=60,
                     what="the worker completing the 20 ads")
        finally:
            api.signal(signal.SIGCONT)
        counted = wait_for(lambda: (r := rates()) is not None and r["completedPerSec"] * r["windowSeconds"] >= 19.5
                           and r, timeout=20, what="the 20 completions counted by the API 5 min ahead")
        assert counted["completedPerSec"] > 0, counted
    finally:
        for proc in (worker, api):
            if proc is not None:
                proc.stop()
