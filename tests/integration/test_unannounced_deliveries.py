"""A worker killed in its last milliseconds may hold deliveries it had not announced in its registry entry (a
long poll's answer, an ad it lingered on): no recovery can hand them back (only the dead worker had their ack
subjects), and JetStream redelivers them when the consumer's ``ack_wait`` expires. gamead says so: the recovery
line names them instead of claiming "0 left to JetStream's redelivery" (or saying nothing), and ``gamead doctor``
notes the ack-pending deliveries no live worker holds while they wait (attack26 finding F1). Real nats-server,
real deliveries; a "dying worker" is a connection that pulls and closes without acknowledging."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import HeldAd, NodeInfo, Registry
from gamead_core.registry.wire import CREATE_FENCE
from gamead_core.store.ads import AdStore, encode
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.reaper import recover_exited
from gamead_core.worker.reaper_loop import run_reaper
from tests.support import Proc, ad, doctor_report, start_worker, wait_for
from tests.waits import until

ACK_WAIT = 8.0  #: seconds, the level consumers' ack_wait in these tests (short: the redelivery is awaited)
LEVEL = 2


@asynccontextmanager
async def _stream_ready(url: str, settings: GameadSettings) -> AsyncIterator[tuple[nats.NATS, JetStreamContext]]:
    """A connection to ``url`` and its JetStream context, gamead's topology ensured; closed on the way out."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_topology(js, settings)
        yield nc, js
    finally:
        await nc.close()


async def _queue(nc: nats.NATS, js: JetStreamContext, title: str) -> str:
    """One ad queued as the API queues it (record, then its work message on level :data:`LEVEL`); its id."""
    store = await AdStore.open(nc, js)
    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=LEVEL, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad(title, LEVEL)))
    revision = await store.create(record)
    await js.publish(names.level_subject(LEVEL), encode(record), headers={
        names.HDR_MSG_ID: record.id, names.HDR_AD_ID: record.id, names.HDR_RECORD_REVISION: str(revision)})
    return record.id


async def _die_holding(url: str, settings: GameadSettings, worker_id: str, pid: int, pulls: int,
                       announce: int) -> None:
    """A worker ``worker_id`` (process ``pid``) pulls ``pulls`` ads, announces the first ``announce`` in its
    registry entry, and dies: its connection closes with nothing acknowledged."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(names.level_consumer(LEVEL), names.ADS_STREAM)
    msgs = await sub.fetch(pulls, timeout=5)
    assert len(msgs) == pulls
    now = utcnow()
    holding = [HeldAd(ad_id=m.headers[names.HDR_AD_ID], delivery=delivery_id(m.metadata.sequence.stream, 1),
                      ack_subject=m.reply) for m in msgs[:announce]]
    await Registry(nc, js, settings.registry).put(NodeInfo(
        id=worker_id, role="worker", host="h", pid=pid, version="t", started_at=now, heartbeat_at=now,
        holding=holding, ack_wait=settings.queue.ack_wait, fence=CREATE_FENCE))
    await nc.close()  # SIGKILL: no ack, no nak, no deletion of its entry


def test_the_recovery_line_names_the_deliveries_a_dead_worker_had_not_announced(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker local-1 dies with 2 deliveries, 1 announced: the recovery hands that one back and says the other
    comes back at the consumer's ack_wait (before: "… 0 left to JetStream's redelivery after ack_wait"). Worker
    local-2 dies with 1 delivery and nothing announced: its recovery still says so in one line (before: none)."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT}})

    async def main() -> None:
        async with _stream_ready(server.url, settings) as (nc, js):
            for i in range(3):
                await _queue(nc, js, f"Pulled {i}")
            await _die_holding(server.url, settings, "local-1", 4101, pulls=2, announce=1)
            await recover_exited(nc, js, settings, "local-1", 4101)
            await _die_holding(server.url, settings, "local-2", 4102, pulls=1, announce=0)
            await recover_exited(nc, js, settings, "local-2", 4102)

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"):
        asyncio.run(main())
    lines = {w: [r.getMessage() for r in caplog.records if f"worker {w} died" in r.getMessage()]
             for w in ("local-1", "local-2")}
    assert len(lines["local-1"]) == 1, lines
    assert len(lines["local-2"]) == 1, lines  # a worker that announced nothing still gets its line
    caveat = (f"any delivery it had not announced yet (its last moments) comes back when JetStream's ack_wait "
              f"expires ({ACK_WAIT:g} s, read from its consumer)")
    one = lines["local-1"][0]
    assert one.startswith("worker local-1 died holding 1 announced ad(s), 0 of them running"), one
    assert "1 handed back" in one and one.endswith(caveat), one
    assert "0 left" not in one, one
    assert lines["local-2"][0] == f"worker local-2 died announcing no held ad; {caveat}"


def test_the_reaper_names_a_worker_that_died_announcing_nothing(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """Outside ``gamead up`` (no supervisor to see the exit) the reaper is the one that notices a death. A worker
    that dies with one delivery it had not announced leaves an entry holding nothing; when that entry expires the
    reaper says so in the same one line, with the consumer's ack_wait (before: only deaths holding announced ads
    were recovered, so this one went unsaid, visible only in the doctor's note)."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT},
                                              "registry": {"ttl": 2.0, "heartbeat_interval": 0.5}})
    # an expired entry: dead, or only frozen or hung, which the reaper cannot tell (attack31c F4: not "died")
    line = "worker remote-1 stopped answering (its registry entry expired: dead, frozen or hung) announcing no held ad"

    async def main() -> None:
        stop = asyncio.Event()
        async with _stream_ready(server.url, settings) as (nc, js):
            await _queue(nc, js, "Delivered Unannounced")
            registry = Registry(nc, js, settings.registry)
            reaper = asyncio.create_task(run_reaper(nc, js, await AdStore.open(nc, js), registry, settings,
                                                    "worker-reaper", stop))
            await _die_holding(server.url, settings, "remote-1", 4301, pulls=1, announce=0)
            # within the entry's ttl (2 s) and a few reaper rounds
            await until(lambda: any(line in r.getMessage() for r in caplog.records), timeout=30,
                        what=f"the line {line!r}")
            stop.set()
            await reaper

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"):
        asyncio.run(main())
    said = [r.getMessage() for r in caplog.records if line in r.getMessage()]
    assert said == [f"{line}; any delivery it had not announced yet (its last moments) comes back when "
                    f"JetStream's ack_wait expires ({ACK_WAIT:g} s, read from its consumer)"], said


def test_a_worker_killed_after_its_entry_expired_still_gets_its_line(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """attack27b F5: `gamead up` kills a frozen worker after registry.ttl of silence, when its entry has just
    expired; its supervisor's recovery found no entry and said nothing, so its held ads came back ~30 s later with
    no line anywhere. Now the line says what it held is not known and when its deliveries come back."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT},
                                              "registry": {"ttl": 1.0, "heartbeat_interval": 0.5}})

    async def main() -> None:
        async with _stream_ready(server.url, settings) as (nc, js):
            await _queue(nc, js, "Held By The Frozen")
            await _die_holding(server.url, settings, "local-4", 4401, pulls=1, announce=1)
            registry = Registry(nc, js, settings.registry)
            async def expired() -> bool:
                return (await registry.lookup("local-4"))[0] is None  # after the ttl

            await until(expired, timeout=30, what="local-4's entry to expire")
            await recover_exited(nc, js, settings, "local-4", 4401)

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"):
        asyncio.run(main())
    said = [r.getMessage() for r in caplog.records if "worker local-4" in r.getMessage()]
    assert said == ["worker local-4 (pid 4401) died after its registry entry had expired, so what it held is not "
                    f"known: every delivery it held comes back when JetStream's ack_wait expires ({ACK_WAIT:g} s, "
                    "read from its consumer)"], said


def test_a_worker_that_never_registered_is_not_said_to_have_died_holding_deliveries(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """attack28c F3: a worker refused at its start (exit 5) never registered, and pulled nothing, yet at every retry
    its recovery said it "died after its registry entry had expired … every delivery it held comes back". Not seen
    serving by its supervisor (``registered=False``), no warning is said; an INFO record says it held nothing. One
    seen serving still gets the expired line (above)."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT}})

    async def main() -> None:
        async with _stream_ready(server.url, settings) as (nc, js):
            await recover_exited(nc, js, settings, "local-5", 4501, registered=False)
            await recover_exited(nc, js, settings, "local-6", 4601)

    with caplog.at_level(logging.INFO, logger="gamead_core.worker.reaper"):
        asyncio.run(main())
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "worker local-" in r.getMessage()]
    assert said == [("INFO", "worker local-5 (pid 4501) exited before it registered: it held nothing"),
                    ("WARNING", "worker local-6 (pid 4601) died after its registry entry had expired, so what it held "
                                "is not known: every delivery it held comes back when JetStream's ack_wait expires "
                                f"({ACK_WAIT:g} s, read from its consumer)")], said


def test_doctor_notes_ack_pending_deliveries_no_live_worker_holds_until_they_are_redelivered(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
) -> None:
    """A worker dies with one delivery it had not announced. While JetStream waits out the consumer's ack_wait,
    `gamead doctor` notes 1 delivery ack-pending that no live worker holds (every invariant still holds: a note,
    exit 0); once a worker takes the redelivery and completes the ad, the note is gone. Before, the doctor said
    nothing while the ad waited."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT}})

    async def setup() -> str:
        async with _stream_ready(server.url, settings) as (nc, js):
            ad_id = await _queue(nc, js, "Delivered To The Dead")
            await _die_holding(server.url, settings, "local-1", 4201, pulls=1, announce=0)
            return ad_id

    ad_id = asyncio.run(setup())

    def notes(report: dict[str, object]) -> dict[str, dict[str, object]]:
        return {n["kind"]: n for n in report.get("notes") or []}  # type: ignore[union-attr,index]

    report = doctor_report(server.url, settle=0.3, queue={"ack_wait": ACK_WAIT})
    assert report["ok"] is True, report  # breaks no invariant: a note, not a finding
    note = notes(report).get("ack_pending_unheld")
    assert note is not None, f"no note of the delivery the dead worker held: {report.get('notes')}"
    assert note["count"] == 1, note
    assert note["sample"] == [f"priority {LEVEL}"], note
    assert f"ack_wait ({ACK_WAIT:g} s)" in note["details"][f"priority {LEVEL}"], note  # type: ignore[index]
    assert "a dead worker's last deliveries" in str(note["what"])

    procs.append(start_worker(server.url, tmp_path, worker_id="w1", GAMEAD_QUEUE__ACK_WAIT=str(ACK_WAIT)))

    async def status() -> tuple[str, int]:
        nc = await nats.connect(server.url)
        try:
            record = (await (await AdStore.open(nc, nc.jetstream())).get(ad_id)).record
            return record.status.value, record.attempts
        finally:
            await nc.close()

    done = wait_for(lambda: (s := asyncio.run(status()))[0] == "completed" and s, timeout=ACK_WAIT + 30,
                    interval=0.2, what="the redelivered ad to complete")
    assert done == ("completed", 1)
    wait_for(lambda: "ack_pending_unheld" not in notes(doctor_report(server.url, settle=0.3,
                                                                     queue={"ack_wait": ACK_WAIT})),
             timeout=30, interval=0.5, what="the doctor's note to go once the ad completed")
