"""An API killed (SIGKILL) between its record creates and their work messages: the reaper queues the records it
left (gamead_core.worker.orphans), with no operator action. Real nats-server, API and worker processes."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.support import (
    Proc,
    ad,
    assert_doctor_clean,
    frozen,
    on_js,
    reaper_rounds,
    start_api,
    start_worker,
    wait_for,
)
from tests.waits import until

#: no redelivery by timeout; an API that waits long for its acks (NATS is stopped under it); the doctor quick
ENV = {"GAMEAD_QUEUE__ACK_WAIT": "30", "GAMEAD_API__PUBLISH_TIMEOUT": "20", "GAMEAD_DOCTOR__SETTLE": "0.3",
       "GAMEAD_DOCTOR__OVERDUE_AFTER": "0"}
BATCH = 40
#: ads queued (record and message) just before, still waiting behind a slow worker when the reaper settles
WAITING = 100
#: the stated bound: every record the dead API left is settled within this many seconds of its death
BOUND = 60.0


def _records(url: str) -> dict[str, str]:
    """ad id → status of every record."""
    from gamead_core.store.ads import AdStore

    async def read(js: Any) -> dict[str, str]:
        store = await AdStore.open(js._nc, js)
        return {r.id: r.status.value for r in await store.scan(limit=1000)}

    return dict(on_js(url, read))


def _received_by(port: int) -> int:
    """Bytes waiting, unread, in the receive queues of the connections accepted on ``port`` (/proc/net/tcp)."""
    waiting = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # local port, ESTABLISHED
            waiting += int(fields[4].split(":")[1], 16)
    return waiting


def test_an_api_killed_between_its_records_and_their_messages_leaves_no_record_queued_for_ever(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """A reviewer's ``kill -9`` of an API during a burst left 30 records ``queued`` without a message for over
    5 minutes (until ``gamead doctor --repair``). Here NATS is stopped while the API creates a batch's 40 records,
    the API is killed (SIGKILL) with the creates sent and no message published, and NATS resumed: the 40 records
    land with no message. Before: they stayed ``queued``. Now the reaper, seeing the API's entry expire, queues
    exactly those 40 again; 100 ads it had queued whole, still waiting behind a slow worker, are published again
    too and dropped by JetStream as duplicates. Every record completes within the bound, each analysed once (as
    many analyses as ads), and the doctor finds nothing."""
    server = fresh_nats()
    assert server.proc is not None
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    worker = start_worker(server.url, tmp_path, worker_id="reaper-1", concurrency=1, ready=True,
                          GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="200", **ENV)  # 100 waiting ads: 20 s of work
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=30) as http:
        first = http.post("/ads", json=ad("Before the kill"))
        assert first.status_code == 202, first.text
    # the reaper lease is held and renewed twice: the reaper has listed the registry with the API in it
    reaper_rounds(server.url)

    answers: list[object] = []

    def submit() -> None:
        try:
            with httpx.Client(base_url=url, timeout=60) as own:
                answers.append(own.post("/ads/batch", json={"ads": [ad(f"Orphan {i}") for i in range(BATCH)]}))
        except httpx.HTTPError as exc:  # the API dies under it: the client cannot know (maybe queued)
            answers.append(exc)

    with httpx.Client(base_url=url, timeout=30) as http:  # all queued: behind these, the API's last ones
        waiting = http.post("/ads/batch", json={"ads": [ad(f"Waiting {i}") for i in range(WAITING)]})
        assert waiting.status_code == 200 and waiting.json()["accepted"] == WAITING, waiting.text[:500]
    port = int(server.url.rsplit(":", 1)[1])
    with frozen(server.proc.pid):
        client = threading.Thread(target=submit)
        client.start()
        # the batch's creates are in NATS's socket, unread: about 500 bytes each
        wait_for(lambda: _received_by(port) > BATCH * 400, timeout=30, what="the batch's record creates sent")
        api.kill()
    client.join(timeout=60)
    assert answers and isinstance(answers[0], httpx.HTTPError), answers  # no 202: the client was told nothing

    def all_stored() -> dict[str, str] | None:
        found = _records(server.url)
        return found if len(found) == BATCH + WAITING + 1 else None

    records = wait_for(all_stored, timeout=30, what="the batch's records stored once NATS runs again")
    left = sorted(i for i, status in records.items() if status == "queued")
    assert len(left) >= BATCH, records  # the batch's: nothing will ever run them but the reaper

    # every record completes within the bound, with no operator action
    last: dict[str, str] = {}

    def all_completed() -> bool:
        last.update(_records(server.url))
        return set(last.values()) == {"completed"}

    try:
        wait_for(all_completed, timeout=BOUND, what="every record the dead API left, completed")
    except AssertionError:
        queued = sum(1 for status in last.values() if status == "queued")
        raise AssertionError(f"{queued} records still queued {BOUND:g} s after the kill (the batch's {BATCH} had "
                             "no message)") from None
    report = wait_for(lambda: re.search(r"dead API \S+: (\d+) record\(s\) without a message queued again, (\d+) had "
                                        r"theirs, (\d+) too old", worker.output()), timeout=10, what="the report")
    republished, already, too_old = map(int, report.groups())
    # exactly the batch is queued again; waiting ads (their message stored: in the stream, or the one analysed
    # now) are published again too, and JetStream drops each as a duplicate
    assert (republished, too_old) == (BATCH, 0) and 0 < already <= WAITING, report.group(0)
    assert_doctor_clean(server.url)

    async def processed(js: Any) -> int:
        from gamead_core.config import load_settings
        from gamead_core.registry import Registry

        nodes = await Registry(js._nc, js, load_settings(None).registry).list()
        return sum(n.processed for n in nodes if n.role == "worker")

    # each ad analysed once: as many analyses as ads (a second copy of a message would make one more); a timeout
    # says the counts seen (the worker's heartbeats, every 2 s)
    seen: list[int] = []

    def one_per_ad() -> bool:
        seen.append(on_js(server.url, processed))
        return seen[-1] == BATCH + WAITING + 1

    try:
        wait_for(one_per_ad, timeout=10, what="one analysis per ad")
    except AssertionError:
        raise AssertionError(f"the workers' heartbeats count {seen[-1]} analyses (last counts seen: {seen[-5:]}), "
                             f"not one per ad ({BATCH + WAITING + 1})") from None


def test_a_create_of_a_dead_api_that_lands_after_its_death_was_settled_is_queued_too(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """An attacker's drill (3 nodes): the APIs' server stopped (SIGSTOP), the API SIGKILLed, the reaper settled its
    death (30 queued again), then the server resumed and applied an atomic batch the API had left in its socket:
    30 more records carrying the dead incarnation's ``Gamead-Origin``, ``queued``, no message, for ever (doctor
    ``no_message``). Here the late create is written by the test, with that origin, once the reaper has reported
    the death settled. Before: it stayed ``queued``. Now the reaper, which keeps watching the death while a
    re-publish is still deduplicated, queues it again and it completes."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import load_settings
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.registry import Registry, incarnation
    from gamead_core.store.ads import AdStore
    from tests.support import submission

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    worker = start_worker(server.url, tmp_path, worker_id="reaper-1", concurrency=2, ready=True, **ENV)
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/ads", json=ad("Before the kill")).status_code == 202
    reaper_rounds(server.url)

    async def api_origin(js: Any) -> tuple[str, str]:
        nodes = await Registry(js._nc, js, load_settings(None).registry).list()
        node = next(n for n in nodes if n.role == "api")
        return node.id, incarnation(node.id, node.pid, node.started_at)

    api_id, origin = on_js(server.url, api_origin)
    api.kill()
    wait_for(lambda: f"dead API {api_id}: 0 record(s)" in worker.output(), timeout=60,
             what="the reaper's report of the API's death, settled with nothing to queue")
    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                      ad=submission(title="Landed late"))

    async def land_late(js: Any) -> int:
        store = await AdStore.open(js._nc, js)
        store.origin = origin  # exactly as the dead API's create, applied by a server that resumed
        return await store.create(record)

    on_js(server.url, land_late)
    wait_for(lambda: _records(server.url).get(record.id) == "completed", timeout=BOUND,
             what="the dead API's late create, queued again by the reaper and completed")
    assert f"ad {record.id} queued again: API {api_id} died" in worker.output()
    assert_doctor_clean(server.url)


def test_records_of_an_api_that_died_unseen_are_queued_by_the_next_reaper(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """attack40a F6: ``kill -9`` of a whole ``gamead up`` mid-submit, then ``gamead up`` again: 20 records the API
    created without publishing their messages stayed ``queued`` for ever (doctor ``no_message``): the registry, a
    memory-stored bucket, was lost with nats-server, so no reaper ever saw that API's entry expire. Here 20 records
    carry the origin of an API incarnation that was never in this registry, with no message, and no worker runs;
    then a worker starts. Before: the 20 stayed ``queued``. Now its reaper, taking the lease, finds them by their
    records (written within the re-publish window) and queues each once: all 20 complete, the doctor is clean."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.registry import incarnation
    from gamead_core.store.ads import AdStore
    from tests.support import submission

    server = fresh_nats()
    origin = incarnation("api-gone-1", 4242, utcnow())
    records = [AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                        ad=submission(title=f"Unseen {i}")) for i in range(20)]

    async def create(js: Any) -> None:
        from gamead_core.config import load_settings
        from gamead_core.queue.topology import ensure_topology

        await ensure_topology(js, load_settings(None))  # as the dead stack's API had made it
        store = await AdStore.open(js._nc, js)
        store.origin = origin  # exactly as the dead API's creates: no message published
        for record in records:
            await store.create(record)

    on_js(server.url, create)
    assert set(_records(server.url).values()) == {"queued"}
    worker = start_worker(server.url, tmp_path, worker_id="reaper-1", concurrency=4, ready=True, **ENV)
    procs.append(worker)
    wait_for(lambda: set(_records(server.url).values()) == {"completed"}, timeout=BOUND,
             what="the 20 records of the API that died unseen, queued by the reaper and completed")
    assert "API api-gone-1 is not in the registry, and 20 record(s)" in worker.output()
    assert worker.output().count("queued again: API api-gone-1 died") == 20
    assert_doctor_clean(server.url)


def test_a_registry_younger_than_records_left_before_it_names_the_doctor(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """attack40a F6's other half: records an API left more than the re-publish window before a NATS restart are
    no reaper's, and the API's last line had promised the reaper. Here a record is created, then the registry bucket
    is deleted and made again (as a restarted nats-server loses it). The reaper's check, for a read starting between
    the two, says once to run ``gamead doctor --repair``; with the registry kept (made before the record), nothing."""
    from gamead_core import clock, names
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import load_settings
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry
    from gamead_core.store.ads import AdStore
    from gamead_core.worker.orphan_read import older_line
    from tests.support import submission

    server = fresh_nats()
    stream = names.kv_stream(names.REGISTRY_BUCKET)

    async def drill(js: Any) -> tuple[str | None, str | None]:
        settings = load_settings(None)
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        await registry.open()
        store = await AdStore.open(js._nc, js)
        await store.create(AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                                    ad=submission(title="Left before the restart")))
        since = clock.now()  # after the record's create was acknowledged, before the registry is made again
        kept = await older_line(js, stream, since)
        await js.delete_stream(stream)
        await Registry(js._nc, js, settings.registry).open()
        return kept, await older_line(js, stream, since)

    kept, lost = on_js(server.url, drill)
    assert kept is None
    assert lost is not None and "gamead doctor --repair" in lost and "NATS restarted" in lost


def test_a_clean_stop_older_than_the_registry_ttl_is_not_called_a_death_for_sure(
    fresh_nats: Callable[[], EmbeddedNats], caplog: Any,
) -> None:
    """review41 F2: a clean stop is told by the registry's delete mark, which the bucket's max_age (``registry.ttl``)
    removes with the entry; a reaper whose first look comes later (the lease taken, a reconnection) takes the API
    for one that died unseen and queues its records again (each repeat dropped as a duplicate). Its line said "it died
    unseen" as a fact; here (registry.ttl 1 s: an API's entry put, 3 records of it, the entry deleted, its mark gone)
    it names the clean stop too. Without the rewording: the line has no "stopped cleanly". Since the clean-stop note
    (review41 F2 fixed: tests/integration/test_reaper_first_look.py) this is the stop of an older gamead, which writes
    no note (the entry deleted by hand): a newer reaper takes it as before."""
    import logging
    import time as clock_time

    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import load_settings
    from gamead_core.models import AdRecord, AdStatus, utcnow
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry, api_node_info, incarnation
    from gamead_core.store.ads import AdStore
    from gamead_core.worker.orphans import Orphans
    from tests.support import submission

    server = fresh_nats()

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "api-clean-1 is not in the registry" in r.getMessage()]

    async def drill(js: Any) -> None:
        base = load_settings(None)
        settings = base.model_copy(update={"registry": base.registry.model_copy(
            update={"ttl": 1.0, "heartbeat_interval": 0.25})})
        await ensure_topology(js, settings)
        registry = Registry(js._nc, js, settings.registry)
        node = api_node_info("api-clean-1", started=clock_time.time())
        await registry.put(node)
        store = await AdStore.open(js._nc, js)
        store.origin = incarnation(node.id, node.pid, node.started_at)
        for i in range(3):
            await store.create(AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                                        ad=submission(title=f"Stopped cleanly {i}")))
        await registry.delete(node.id)  # the clean stop
        async def mark_gone() -> bool:  # the mark goes with the entry after registry.ttl
            return not (await registry.lookup(node.id))[1]

        await until(mark_gone, timeout=20, what="the delete mark to go")
        orphans = Orphans()

        async def looked() -> object:  # a reaper's round (every 0.2 s here); its first look: registry.ttl after start
            await orphans.unseen(js, settings, registry, {}, 0)
            return said()

        await until(looked, timeout=20, interval=0.2, what="a line about the stopped API")

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.orphans"):
        on_js(server.url, drill)
    (line,) = said()
    assert "3 record(s)" in line and "stopped cleanly over registry.ttl (1s) ago" in line, line
