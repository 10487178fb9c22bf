"""One doctor repair at a time (words58: each of two concurrent ``gamead doctor --repair`` started its own repair job,
both acting on the same findings): a repair asked for while another is queued or running is refused, 409
``repair_running`` naming it, and nothing is started; the CLI says so in one red line."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import nats
import orjson
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.program import follow_up
from gamead_core import names
from gamead_core.api import repair_claim
from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.jobs.store import JobStore
from gamead_core.models import utcnow
from tests.support import Proc, start_api

ASKS = 5


def _ended_before(a: dict[str, object], b: dict[str, object]) -> bool:
    return a.get("finishedAt") is not None and str(a["finishedAt"]) <= str(b["createdAt"])


def _asked_at_once_one_at_a_time(urls: list[str]) -> None:
    """A repair asked for at once through each of ``urls`` (API nodes, one ask each): every answer a started job or
    a refusal naming one of them, and no two repair jobs ran at once."""
    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        answers = list(pool.map(lambda u: httpx.post(f"{u}/v1/doctor/repair", timeout=30), urls))
    started = [a.json() for a in answers if a.status_code == 202]
    refused = [a.json()["error"] for a in answers if a.status_code != 202]
    assert started and all(a.status_code in (202, 409) for a in answers), [a.text for a in answers]
    for error in refused:  # each names a repair job that was asked for here
        assert error["code"] == "repair_running" and error["details"]["jobId"] in {j["id"] for j in started}, error
    jobs = httpx.get(f"{urls[0]}/v1/jobs", params={"kind": "repair"}, timeout=30).json()
    listed = jobs["items"] if isinstance(jobs, dict) else jobs
    assert len(listed) == len(started), listed
    for i, a in enumerate(listed):  # no two repair jobs ran at once
        for b in listed[i + 1:]:
            assert _ended_before(a, b) or _ended_before(b, a), (a, b)


def test_concurrent_repairs_start_one_job_and_refuse_the_others_naming_it(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    _asked_at_once_one_at_a_time([url] * ASKS)


def test_doctor_repair_while_a_repair_runs_says_so_in_one_red_line(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """``gamead doctor --repair`` (it repairs only what its check found: an obsolete stream here) while another
    node's repair job runs (its document as that node wrote it, its lease a minute ahead): one red line naming that
    job, nothing started."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    other = asyncio.run(_elsewhere(server.url))
    done = CliRunner().invoke(app, ["doctor", "--repair", "--yes", "--detach", "--api", url])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: "), done.output
    assert f"repair job {other} is already running" in lines[0] and "repair_running" in lines[0], lines
    assert f"follow it: {follow_up('dlq', 'jobs', other, '--follow')} --api {url}" in lines[0], lines  # leftout59
    assert "/v1/" not in lines[0], lines  # the API's path: a CLI user runs a command
    jobs = httpx.get(f"{url}/v1/jobs", params={"kind": "repair"}, timeout=30).json()
    assert [j["id"] for j in (jobs["items"] if isinstance(jobs, dict) else jobs)] == [other], jobs


async def _elsewhere(url: str) -> str:
    """A stream an earlier gamead made (what ``--repair`` deletes) and a repair job another API node runs: its id."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=names.OBSOLETE_STREAMS[0], subjects=["gamead.old.advisories"])
        job = Job(id=new_job_id(), kind=JobKind.REPAIR, state=JobState.RUNNING, selection=Selection(mode="doctor"),
                  started_by="alice", created_at=utcnow(), started_at=utcnow(), runner="api-elsewhere",
                  lease_until=time.time() + 60, lease_ttl=60)
        await (await JobStore.open(js)).create(job)
        return job.id
    finally:
        await nc.close()


def test_concurrent_repairs_through_two_api_nodes_start_one_job_at_a_time(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """attack59: two ``gamead doctor --repair`` at once through two API nodes on one NATS. Each node's look for a
    running repair and its job's creation were one step on that node only: both looked, found none, and each
    started its own repair job acting on the same findings (before: 2 repair jobs at once in each of 3 runs of
    this test). A repair is claimed in the jobs bucket, compare-and-set: one job, the other asks refused naming
    it."""
    server = fresh_nats()
    nodes = [start_api(server.url, tmp_path) for _ in range(2)]
    procs.extend(api for api, _ in nodes)
    _asked_at_once_one_at_a_time([url for _, url in nodes] * ASKS)


def test_a_claim_whose_job_was_never_stored_holds_a_while_then_lapses(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """A node that claimed the repair and died before storing its job (attack59): its claim refuses the others
    while it may still be storing it (``UNBORN`` seconds), naming it; an older one is taken over."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    young = asyncio.run(_claimed(server.url, time.time()))
    refused = httpx.post(f"{url}/v1/doctor/repair", timeout=30)
    assert refused.status_code == 409 and refused.json()["error"]["details"]["jobId"] == young, refused.text
    asyncio.run(_claimed(server.url, time.time() - 2 * repair_claim.UNBORN))
    started = httpx.post(f"{url}/v1/doctor/repair", timeout=30)
    assert started.status_code == 202, started.text


async def _claimed(url: str, at: float) -> str:
    """The repair claimed at ``at`` (Unix seconds) for a job never stored: its id."""
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(names.JOBS_BUCKET)
        job_id = new_job_id()
        await kv.put(names.REPAIR_CLAIM_KEY, orjson.dumps({"jobId": job_id, "startedBy": "bob", "claimedAt": at}))
        return job_id
    finally:
        await nc.close()
