"""A completed ad whose ``+ACK`` was lost: `gamead doctor` notes it (exit 0) while JetStream's redelivery may still
come, and fails (exit 1) once it is overdue (chaos48 F3).

The drill: a 3-node R3 cluster, the stream leader SIGKILLed at 120 ads/s: 2-6 ads per kill were `completed` (one
write) while their plain `+ACK` was lost, so their messages stayed ack-pending until `ack_wait` (30 s) redelivered
them to a worker that acknowledged them unanalysed; `gamead doctor` 22-28 s after each kill said `✗
completed_with_message · 6 ads · invariant 2`, exit 1: a cron paging on exit 1 paged after every fail-over. Here
on one real nats-server: a connection pulls each ad's delivery, writes its record `completed` under it, and never
acknowledges it (the lost ack); no worker runs, so past `ack_wait` nothing redelivers it (a real fault). The same
for an ad dead-lettered under its delivery (DLQ entry, record `dead`) whose ack was lost: `dead_with_message`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.doctor.diagnose import diagnose
from gamead_core.doctor.model import ACK_LOST_MARGIN, Report
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdError, AdRecord, AdStatus, DlqEntry, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.store.ads import AdStore
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.deadletter import dead_letter
from tests.support import Proc, ad, assert_doctor_clean, clean_env, run_gamead, start_api, wait_for

ACK_WAIT = 10  #: seconds: the stack's queue.ack_wait (its level consumers'), short so "past it" comes soon
LEVEL = 5
YOUNG_LEVEL = 4  #: the young ad's: a pull of LEVEL past ack_wait gets an old one's redelivery first


def _complete_without_ack(url: str, nats_url: str, titles: list[str], level: int = LEVEL, *,
                          dead: bool = False, cut_short: bool = False) -> list[str]:
    """Submit one ad per title, pull each delivery, record it `completed` under it (``dead``: run under it, then
    dead-lettered as a worker does: its DLQ entry, then its record `dead`; ``cut_short`` too: its DLQ entry only,
    the worker dying before the record); acknowledge none."""

    async def run() -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for title in titles:
                answer = await client.post("/ads", json=ad(title, level))
                assert answer.status_code == 202, answer.text
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe_bind(names.level_consumer(level), names.ADS_STREAM)
            store = await AdStore.open(nc, js)
            done: list[str] = []
            while len(done) < len(titles):
                for msg in await sub.fetch(len(titles) - len(done), timeout=10):
                    ad_id = msg.headers[names.HDR_AD_ID]
                    current = await store.get(ad_id)
                    record, now = current.record, utcnow()
                    if dead:
                        await _dead_letter(store, js, record, current.revision, msg, cut_short=cut_short)
                        done.append(ad_id)
                        continue
                    await store.update(record.model_copy(update={
                        "status": AdStatus.COMPLETED, "attempts": 1, "worker_id": "local-9", "started_at": now,
                        "delivery": delivery_id(msg.metadata.sequence.stream, msg.metadata.num_delivered),
                        "completed_at": utcnow(), "analysis": analyze(record.ad)}), current.revision)
                    done.append(ad_id)  # and no ack: it was lost on its way
            return done
        finally:
            await nc.close()

    return asyncio.run(run())


async def _dead_letter(store: AdStore, js: JetStreamContext, record: AdRecord, revision: int, msg: Msg, *,
                       cut_short: bool = False) -> None:
    """What a worker does with an ad that fails for good under delivery ``msg``: its record `processing` under
    it, then the DLQ entry and the record `dead` (:func:`dead_letter`); the ack that would follow is lost.
    ``cut_short``: the worker dies after the DLQ entry (the copy :func:`dead_letter` makes first), before the
    record."""
    seq = msg.metadata.sequence.stream
    running = record.model_copy(update={"status": AdStatus.PROCESSING, "attempts": 1, "worker_id": "local-9",
                                        "started_at": utcnow(),
                                        "delivery": delivery_id(seq, msg.metadata.num_delivered)})
    await store.update(running, revision)
    error = AdError(error_class="Permanent", message="refused for good", retryable=False, at=utcnow())
    if cut_short:
        now = utcnow()
        await DeadLetters(js).add(DlqEntry(
            ad_id=record.id, title=record.ad.title, priority=record.priority, attempts=1, error_class="Permanent",
            error_message="refused for good", retryable=False, first_failure_at=now, last_failure_at=now,
            dead_at=now, worker_id="local-9", submitted_at=record.submitted_at, ad=record.ad, source_seq=seq))
        return
    assert await dead_letter(store, DeadLetters(js), running, error, 1, source_seq=seq, worker_id="local-9")


def _doctor(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    run = run_gamead("doctor", "--api", url, "--settle", "0.5", "-o", "json", *args, env=clean_env(), timeout=120)
    assert run.stdout.strip(), run.stderr
    return run.returncode, json.loads(run.stdout)


def _dead_lettered_note(server: EmbeddedNats, procs: list[Proc], tmp_path: Path, title: str, status: str, kind: str,
                        *, cut_short: bool = False) -> tuple[str, str, dict[str, Any]]:
    """An API on ``server`` and one ad dead-lettered under its delivery, unacknowledged (``cut_short``: its record
    not written `dead`), its record ``status`` and its DLQ entry checked; the API's url, the ad's id and the note of
    ``kind`` of a doctor run, which exits 0 with no finding."""
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__ACK_WAIT=str(ACK_WAIT))
    procs.append(api)
    [ad_id] = _complete_without_ack(url, server.url, [title], dead=True, cut_short=cut_short)
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get(f"/ads/{ad_id}").json()["status"] == status
        assert [e["adId"] for e in http.get("/v1/dlq").json()["items"]] == [ad_id]
    code, report = _doctor(url)
    assert code == 0 and report["findings"] == [], report
    [note] = [n for n in report["notes"] if n["kind"] == kind]
    return url, ad_id, note


def _doctor_exit_1(url: str) -> dict[str, Any]:
    """The report of the first doctor run that exits 1 (past ack_wait, nothing redelivered), within ack_wait + 60 s."""

    def overdue() -> dict[str, Any] | None:
        code, report = _doctor(url)
        return report if code == 1 else None

    return wait_for(overdue, timeout=ACK_WAIT + 60, interval=1, what="doctor exit 1 past ack_wait")


def _ack_pending(nats_url: str) -> tuple[int, int]:
    """The ack-pending deliveries of both levels' consumers, and the messages left in the work stream."""

    async def run() -> tuple[int, int]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            pending = [(await js.consumer_info(names.ADS_STREAM, names.level_consumer(lvl))).num_ack_pending
                       for lvl in (LEVEL, YOUNG_LEVEL)]
            return sum(int(n or 0) for n in pending), int((await js.stream_info(names.ADS_STREAM)).state.messages)
        finally:
            await nc.close()

    return asyncio.run(run())


def test_a_lost_ack_is_a_note_until_ack_wait_then_an_error_and_repair_removes_both(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__ACK_WAIT=str(ACK_WAIT))
    procs.append(api)
    old = _complete_without_ack(url, server.url, ["Ack Lost One", "Ack Lost Two"])

    # within ack_wait: JetStream redelivers them and a worker acknowledges them unanalysed: a note, exit 0
    code, report = _doctor(url)
    assert code == 0 and report["findings"] == [], report
    [note] = [n for n in report["notes"] if n["kind"] == "ack_lost"]
    assert note["count"] == 2 and sorted(note["sample"]) == sorted(old), note
    for ad_id in old:
        assert note["details"][ad_id].startswith("ack lost: JetStream redelivers it by "), note
        assert note["details"][ad_id].endswith(" UTC and a worker acknowledges it unanalysed (--repair removes it "
                                               "now)"), note
    assert "ack_pending_unheld" not in {n["kind"] for n in report["notes"]}, report  # the same deliveries, named

    # past ack_wait (+ the margin) with nothing redelivered: the invariant's error, exit 1
    report = _doctor_exit_1(url)
    [finding] = report["findings"]
    assert finding["kind"] == "completed_with_message" and sorted(finding["sample"]) == sorted(old), report
    assert "nothing redelivered it" in finding["details"][old[0]], finding
    assert "ack_lost" not in {n["kind"] for n in report["notes"]}, report

    # --repair removes the overdue ones and a young one alike: nothing is left ack-pending to redeliver
    [young] = _complete_without_ack(url, server.url, ["Ack Lost Three"], YOUNG_LEVEL)
    assert _ack_pending(server.url) == (3, 3)
    run = run_gamead("doctor", "--api", url, "--repair", "--yes", "-o", "json", env=clean_env(), timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    fixed = json.loads(run.stdout)
    assert young in [n for n in fixed["before"]["notes"] if n["kind"] == "ack_lost"][0]["sample"], fixed["before"]
    assert fixed["after"]["ok"] and not fixed["after"]["notes"], fixed["after"]
    assert _ack_pending(server.url) == (0, 0)
    assert_doctor_clean(url)


def test_the_second_look_reads_a_lost_acks_consumer_once(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                                                         tmp_path: Path) -> None:
    """re-read49: a lost ack is also a delivery no worker holds, so the second look read its level's
    ``CONSUMER.INFO`` twice, once for the ack-pending check and once for the lost-ack check (3 reads of it in a run
    with the first look's); now the ack-pending check's reading serves both: one read of it in each look, and the
    same note."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__ACK_WAIT=str(ACK_WAIT))
    procs.append(api)
    [lost] = _complete_without_ack(url, server.url, ["Ack Lost Once"])
    settings = GameadSettings.model_validate({"queue": {"ack_wait": ACK_WAIT}})

    async def run() -> tuple[Report, int]:
        counter, nc = await nats.connect(server.url), await nats.connect(server.url, inbox_prefix="_DOCTOR")
        asked: list[str] = []

        async def count(msg: Msg) -> None:
            if msg.reply.startswith("_DOCTOR."):  # the doctor's, not the API's sampler's
                asked.append(msg.subject)

        try:
            await counter.subscribe(f"$JS.API.CONSUMER.INFO.{names.ADS_STREAM}.{names.level_consumer(LEVEL)}",
                                    cb=count)
            await counter.flush()
            diagnosis = await diagnose(nc, nc.jetstream(), settings, settle=0.5)
            await counter.flush()  # after every request the doctor made: each one routed to it already
            return diagnosis.report, len(asked)
        finally:
            await nc.close()
            await counter.close()

    report, reads = asyncio.run(run())
    notes = {n.code: n for n in report.notes if n.count}
    assert set(notes) == {"ack_lost"} and notes["ack_lost"].items == [lost], notes
    assert not [f for f in report.findings if f.count], report.findings
    assert reads == 2, f"{reads} reads of the level's consumer in one run"


def test_a_dead_ads_lost_ack_is_the_same_note_until_ack_wait_then_dead_with_message(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """The same lost ``+ACK`` after a dead-lettering (the DLQ entry written, the record `dead` under the delivery):
    JetStream redelivers the message within ack_wait and a worker acknowledges it unanalysed (its record is
    terminal), so the doctor notes ``ack_lost`` (exit 0) until its end (``completedAt``, when it became dead) +
    ack_wait + the margin, then fails ``dead_with_message``. Before: ``✗ dead_with_message``, exit 1, at once."""
    server = fresh_nats()
    url, dead, note = _dead_lettered_note(server, procs, tmp_path, "Dead Ack Lost", "dead", "ack_lost")
    assert note["sample"] == [dead] and note["details"][dead].startswith("ack lost: JetStream redelivers it by "), note
    assert "completed or dead ad" in note["what"] and f"(+{ACK_LOST_MARGIN:g} s)" in note["what"], note

    report = _doctor_exit_1(url)
    [finding] = report["findings"]
    assert finding["kind"] == "dead_with_message" and finding["sample"] == [dead], report
    assert "nothing redelivered it" in finding["details"][dead], finding
    run = run_gamead("doctor", "--api", url, "--repair", "--yes", "-o", "json", env=clean_env(), timeout=120)
    assert run.returncode == 0 and json.loads(run.stdout)["after"]["ok"], run.stdout[-2000:] + run.stderr
    assert _ack_pending(server.url) == (0, 0)
    with httpx.Client(base_url=url, timeout=10) as http:  # the DLQ entry stays: replay it to run the ad again
        assert [e["adId"] for e in http.get("/v1/dlq").json()["items"]] == [dead]


def test_a_dead_lettering_cut_short_is_a_note_until_ack_wait_then_entry_of_live_ad(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """attack58: a worker SIGKILLed between an ad's DLQ entry and its record `dead` (dead_letter copies first) leaves
    a `processing` record beside the entry, and the redelivery repeats the dead-lettering. A drill (100 ads/s, 30 %
    failing for good, a worker SIGKILLed) had `gamead doctor` right after say `✗ entry_of_live_ad · 3 ads ·
    invariant 3`, exit 1, with nothing for --repair to do; 5 s later every one was dead and doctor clean. Now a note
    (exit 0) while the redelivery may come (the entry made from the ad's one message, still ack-pending, deadAt +
    ack_wait + the margin ahead), the finding past it, when no worker redelivered it."""
    url, cut, note = _dead_lettered_note(fresh_nats(), procs, tmp_path, "Dead Letter Cut Short", "processing",
                                         "dead_letter_unfinished", cut_short=True)  # before: entry_of_live_ad, exit 1
    assert note["sample"] == [cut], note
    assert note["details"][cut].startswith("its worker died between its DLQ entry and its record: JetStream "
                                           "redelivers it by "), note

    report = _doctor_exit_1(url)
    [finding] = report["findings"]
    assert finding["kind"] == "entry_of_live_ad" and finding["sample"] == [cut], report
    assert "its dead-lettering was cut short and nothing redelivered it" in finding["details"][cut], finding
    assert "dead_letter_unfinished" not in {n["kind"] for n in report["notes"]}, report
