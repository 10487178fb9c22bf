"""attack31b F2b: an operator job whose runner died with its ``leaseUntil`` an hour ahead (its clock ahead, a hand
edit) stayed ``running`` for that hour: no node took it over, ``gamead doctor`` said nothing, and ``gamead dlq
cancel`` said "it stops within a second" while nobody was there to stop it. Now a node takes over a job whose lease
stood unchanged for ``jobs.lease`` on its own clock (the leader lease's rule), the doctor names such a job and
``--repair`` takes it over, and a cancel of a job with no live runner ends it at once. Real nats-server; the cancel
through a real API process and the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core.config import GameadSettings
from gamead_core.doctor import diagnose
from gamead_core.doctor.repair import RepairOps
from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.jobs.runner import JobService
from gamead_core.jobs.store import JobStore
from gamead_core.models import utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore
from tests.support import Proc, start_api
from tests.waits import registry_older_than_ttl

AHEAD = 3600.0  #: the dead runner's leaseUntil, seconds ahead


def _job(runner: str = "vm-deadnode-1") -> Job:
    """A purge job `running` on a runner that is gone, its lease written an hour ahead."""
    return Job(id=new_job_id(), kind=JobKind.PURGE, state=JobState.RUNNING, selection=Selection(mode="all"),
               started_by="op", created_at=utcnow(), runner=runner, lease_until=time.time() + AHEAD)


def test_a_job_whose_lease_lies_an_hour_ahead_is_taken_over_once_it_stood_unchanged_for_a_lease(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """A node's sweeper (``jobs.lease`` 1 s, ``max_resumes`` 0: the take-over ends it ``interrupted``) takes the job
    over once its lease stood unchanged for 10 leases on its own clock (before: only after the hour)."""
    server = fresh_nats()
    settings = GameadSettings(jobs={"lease": 1, "max_resumes": 0})

    async def main() -> Job:
        nc = await nats.connect(server.url)
        try:
            await ensure_topology(nc.jetstream(), settings)
            store = await JobStore.open(nc.jetstream())
            job = _job()
            await store.create(job)
            service = JobService(settings, "api-sweeper", ops=lambda: None)  # type: ignore[arg-type,return-value]
            service._store = store
            deadline = time.monotonic() + 40  # a written lease is trusted up to 10 × jobs.lease (review31 R4)
            while (now := (await store.get(job.id))[0]).state == JobState.RUNNING and time.monotonic() < deadline:
                await service.sweep()
                await asyncio.sleep(0.2)  # the sweeper's own pace (jobs.lease / 3)
            return now
        finally:
            await nc.close()

    ended = asyncio.run(main())
    print(f"{ended.state.value}: {ended.stop_reason}")
    assert ended.state == JobState.INTERRUPTED, ended
    assert "vm-deadnode-1" in (ended.stop_reason or "")
    assert ended.lease_ttl == 1.0  # fix32: the node that took it over wrote its lease's ttl (its jobs.lease)


def test_a_sweeper_with_a_shorter_jobs_lease_never_takes_a_live_runners_job(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review31 R4 (the job lease): a runner with ``jobs.lease`` 4 renews every 1.3 s; a node with ``jobs.lease`` 1
    judged the lease silent after 1 s unchanged and took the live job (here: ended it ``interrupted``, two runners
    otherwise). Over six renewals it stays the runner's."""
    server = fresh_nats()
    settings = GameadSettings(jobs={"lease": 1, "max_resumes": 0})

    async def main() -> tuple[Job, list[str]]:
        nc = await nats.connect(server.url)
        try:
            await ensure_topology(nc.jetstream(), settings)
            store = await JobStore.open(nc.jetstream())
            job = _job(runner="livehost-77-abcdef")
            job.lease_until = time.time() + 4.0
            revision = await store.create(job)
            service = JobService(settings, "api-sweeper", ops=lambda: None)  # type: ignore[arg-type,return-value]
            service._store = store
            lost: list[str] = []
            for _ in range(6):
                renew_at = time.monotonic() + 1.3
                while time.monotonic() < renew_at:
                    await service.sweep()
                    await asyncio.sleep(0.2)  # the sweeper's own pace
                current, now_rev = await store.get(job.id)
                if now_rev != revision or current.state != JobState.RUNNING:
                    lost.append(f"{current.state.value} by {current.runner}")
                    break
                current.lease_until = time.time() + 4.0  # the runner's renewal (its own jobs.lease, 4 s)
                revision = await store.update(current, revision)
            return (await store.get(job.id))[0], lost
        finally:
            await nc.close()

    final, lost = asyncio.run(main())
    assert not lost and final.state == JobState.RUNNING and final.runner == "livehost-77-abcdef", (lost, final)


def test_the_doctor_names_a_job_whose_runner_is_gone_or_lease_too_far_ahead_and_the_repair_takes_it_over(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Two jobs `running` with live-looking leases: one an hour ahead, one within ``jobs.lease`` but held by an API
    node that has no registry entry. The doctor finds both (``job_lease_expired``; before: every invariant held),
    its repair takes both over (ended ``interrupted``: ``max_resumes`` 0), then all is clean."""
    server = fresh_nats()
    settings = GameadSettings(jobs={"lease": 30, "max_resumes": 0}, doctor={"settle": 0.2},
                              registry={"heartbeat_interval": 0.1, "ttl": 1.0})

    async def main() -> tuple[dict[str, Any], list[str], dict[str, Any]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, settings)
            # a runner's node missing from a registry bucket younger than its ttl may be live (its entry went with
            # the bucket: lease51): the doctor calls it gone only once the bucket is older
            await registry_older_than_ttl(js)
            store = await JobStore.open(js)
            ahead, gone = _job(), _job(runner="deadhost-4242-abcdef")
            gone.lease_until = time.time() + 20
            for job in (ahead, gone):
                await store.create(job)
            found = await diagnose(nc, js, settings)
            service = JobService(settings, "api-doctor", ops=lambda: None)  # type: ignore[arg-type,return-value]
            service._store = store
            ops = RepairOps(nc, js, settings, store=AdStore(nc, js), jobs=service)
            marks = [await ops.act(item, "repairjob") for item in found.actions]
            after = await diagnose(nc, js, settings)
            states = [(await store.get(j.id))[0].state.value for j in (ahead, gone)]
            return found.report.wire(10), marks + states, after.report.wire(10)
        finally:
            await nc.close()

    before, outcome, after = asyncio.run(main())
    print(json.dumps(before["findings"], indent=1))
    kinds = {f["kind"]: f for f in before["findings"]}
    assert set(kinds) == {"job_lease_expired"} and kinds["job_lease_expired"]["count"] == 2, before["findings"]
    details = json.dumps(before["findings"])
    assert "more than 10 \\u00d7 jobs.lease" in details and "api-deadhost-4242" in details
    assert outcome == ["T", "T", "interrupted", "interrupted"], outcome
    assert after["ok"] is True


def test_the_doctor_never_names_a_job_whose_runners_node_is_registered_stuck(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """fix32: the leader leases' rule for job leases too, "a registered holder is never stuck". A job whose runner's
    API node heartbeats, its lease written by a clock an hour ahead (``leaseUntil`` and ``leaseTtl`` 30 s), was
    named ``job_lease_expired`` and ``--repair`` took the live job over (two runners); now the doctor finds nothing.
    The same job once that node's entry is gone is named, with its clock ahead (``leaseUntil − leaseTtl``)."""
    from gamead_core.registry import Registry
    from tests.integration.test_node_counts import api_entry

    server = fresh_nats()
    settings = GameadSettings(jobs={"lease": 30, "max_resumes": 0}, doctor={"settle": 0.2})

    renewed: list[float] = []  # leaseUntil − leaseTtl − now, just before and just after the second diagnosis

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, settings)
            store = await JobStore.open(js)
            job = _job(runner="livehost-77-abcdef")
            job.lease_ttl = 30.0
            await store.create(job)
            registry = Registry(nc, js, settings.registry)
            await registry.put(api_entry("api-livehost-77"))
            live = (await diagnose(nc, js, settings)).report.wire(10)
            await (await registry.open()).delete("api-livehost-77")
            renewed.append(job.lease_until - 30.0 - time.time())
            gone = (await diagnose(nc, js, settings)).report.wire(10)
            renewed.append(job.lease_until - 30.0 - time.time())
            return live, gone
        finally:
            await nc.close()

    live, gone = asyncio.run(main())
    assert live["ok"] is True, live["findings"]  # before: job_lease_expired, "3600 s ahead"
    details = json.dumps(gone["findings"])
    said = re.search(r"renewed (\d+) s ahead of now", details)
    assert "job_lease_expired" in details and said is not None, gone["findings"]
    # 3570 s within the diagnosis's own span (a loaded run's took over 0.5 s: 3569)
    assert round(renewed[1]) - 1 <= int(said[1]) <= round(renewed[0]) + 1, (said[0], renewed)


def test_cancelling_a_job_whose_runner_is_gone_ends_it_and_says_so(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """``gamead dlq cancel`` of a job whose runner died with its lease an hour ahead: the API ends it at once
    (``cancelled``, its stop reason naming the runner) and the CLI says so (before: "cancel asked …: it stops
    within a second", and the job stayed ``running`` for the hour)."""
    server = fresh_nats()
    settings = GameadSettings()

    async def make() -> str:
        nc = await nats.connect(server.url)
        try:
            await ensure_topology(nc.jetstream(), settings)
            job = _job()
            await (await JobStore.open(nc.jetstream())).create(job)
            return job.id
        finally:
            await nc.close()

    job_id = asyncio.run(make())
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    said = CliRunner().invoke(app, ["dlq", "cancel", job_id, "--api", url])
    print(said.output)
    assert said.exit_code == 0, said.output
    assert f"job {job_id} cancelled" in said.output and "vm-deadnode-1" in said.output
    assert "stops within a second" not in said.output
    with httpx.Client(base_url=url, timeout=30) as http:
        job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "cancelled", job
