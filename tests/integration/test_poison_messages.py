"""Poison in the work stream (attack31a F3, F4): messages no API published, put on the work subjects with nats-py
beside a real API and a real worker. What an operator sees: ``gamead doctor`` names each waiting one as poison
(not "the worker recreates the record"), the worker terminates each once with one ERROR line naming its stream
sequence, creates no record under either id, counts it on its /metrics by reason, and the doctor finds the trace
afterwards; an ad charged more attempts than ``worker.max_attempts`` is dead-lettered saying what it held."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
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


def _record(ad_id: str, priority: int = 3, **fields: Any) -> bytes:
    """A record as the API writes it for ``ad_id`` (``fields`` override its top level)."""
    body = {"id": ad_id, "status": "queued", "priority": priority, "submittedAt": "2026-12-03T19:20:00Z",
            "ad": ad(f"Injected {ad_id[-4:]}", 3), **fields}
    return json.dumps(body).encode()


def _publish(url: str, messages: list[tuple[str, bytes, dict[str, str] | None]]) -> list[int]:
    """Publish each ``(name, body, headers)`` on priority 3's subject; their stream sequences, in order."""
    async def go() -> list[int]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            return [(await js.publish(names.level_subject(3), body, headers=headers)).seq
                    for _, body, headers in messages]
        finally:
            await nc.close()

    return asyncio.run(go())


def _work_messages(url: str) -> int:
    async def go() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(names.ADS_STREAM)).state.messages)
        finally:
            await nc.close()

    return asyncio.run(go())


def _notes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["kind"]: n for n in report["notes"]}  # type: ignore[index]


def test_poison_messages_are_named_by_the_doctor_then_terminated_once_counted_and_traced(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before: a message whose body was another ad's record looped for ever (an "unexpected error" traceback
    every ack_wait) and made a stray ``queued`` record under the body's id, which the doctor called recoverable;
    ``NOT-AN-ID`` and a priority-9 record were analysed and stored; nothing counted or kept a poison message."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    d, e, f, g, h, k = (new_ad_id() for _ in range(6))
    kinds: list[tuple[str, bytes, dict[str, str] | None]] = [
        ("id_mismatch", _record(d), {names.HDR_AD_ID: e}),  # F3: another ad's record
        ("id_mismatch", _record(g), {names.HDR_AD_ID: h, names.HDR_RECORD_REVISION: "1"}),  # …trusted by its header
        ("bad_ad_id", b"\x00\xffnot json{{{", None),
        ("bad_ad_id", _record("NOT-AN-ID"), {names.HDR_AD_ID: "NOT-AN-ID"}),
        ("not_a_record", b"not json", {names.HDR_AD_ID: f}),
        ("invalid_record", _record(k, priority=9), {names.HDR_AD_ID: k}),
    ]
    seqs = _publish(server.url, kinds)

    # no worker yet: the doctor names each waiting message as poison, none as a message the worker recovers
    report = doctor_report(url, settle=0.3)
    notes = _notes(report)
    assert "message_without_record" not in notes, notes
    poison = notes["poison_message"]
    assert poison["count"] == len(kinds), poison
    shown = {item: poison["details"][item] for item in poison["sample"]}
    assert {int(item.rsplit(" ", 1)[1]) for item in shown} == set(seqs), shown
    assert any("is the record of" in why and d in why for why in shown.values()), shown
    assert "find what publishes" in poison["what"]

    worker, port = start_metered_worker(server.url, tmp_path, worker_id="taster", concurrency=2, ready=True, **ENV)
    procs.append(worker)
    wait_for(lambda: _work_messages(server.url) == 0, timeout=30, what="every poison message gone from the stream")
    metrics = wait_for(lambda: (m := scrape(f"http://127.0.0.1:{port}/metrics")) and total(
        m.get("gamead_poison_messages_total", {})) == len(kinds) and m, what="every poison message counted")
    counted = metrics["gamead_poison_messages_total"]
    for reason in {r for r, _, _ in kinds}:
        assert total(counted, reason=reason) == sum(1 for r, _, _ in kinds if r == reason), (reason, counted)

    with httpx.Client(base_url=url, timeout=10) as http:
        for ad_id in (d, e, f, g, h, k):
            assert http.get(f"/ads/{ad_id}").status_code == 404, ad_id  # nothing made under either id
    log = worker.output()
    # one ERROR line a minute (review31 R6: one per message flooded the log); the rest counted on /metrics
    assert sum(log.count(f"work-stream message {seq} on ") for seq in seqs) == 1, log[-3000:]
    assert "unexpected error" not in log and "Traceback" not in log

    after = wait_for(lambda: (r := doctor_report(url, settle=0.3)) and _notes(r).get(
        "poison_terminated", {}).get("count") == len(kinds) and r, what="every poison message in the trace")
    notes = _notes(after)
    assert after["ok"] and "poison_message" not in notes and "message_without_record" not in notes, after
    trace = notes["poison_terminated"]
    (last,) = trace["sample"]
    assert int(last.split(" seq ")[1].split(" ")[0]) in seqs, last
    assert "reason " in trace["details"][last] and "bytes" in trace["details"][last]


def test_an_ad_charged_more_attempts_than_the_budget_is_dead_lettered_saying_so(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before: ``dead-lettered after 99 attempt(s): … no outcome was recorded for the last of its 5 attempt(s)``.
    Now the error says what the record held: 99 charged, more than worker.max_attempts 5 allows."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    spent = new_ad_id()
    _publish(server.url, [("spent", _record(spent, status="processing", attempts=99), {names.HDR_AD_ID: spent})])
    procs.append(start_worker(server.url, tmp_path, worker_id="spender", **ENV))
    with httpx.Client(base_url=url, timeout=10) as http:
        wait_for(lambda: http.get(f"/ads/{spent}").status_code == 200, what="the record made from the message")
        dead = wait_terminal(http, spent)
    assert dead["status"] == "dead"
    message = dead["error"]["message"]  # type: ignore[index]
    assert "99 charged, more than worker.max_attempts 5" in message and "last of its 5" not in message, message


def test_the_sweep_deletes_a_stranded_poison_message_and_creates_nothing(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """A consumer with a finite ``max_deliver`` (an older gamead's) gives up on two poison messages: another ad's
    record under an id with no record, and ``NOT-AN-ID``. Before: the sweep created the body's record and queued
    it again as an ad (and left the other in place, warning every minute). Now both are deleted, counted and
    traced, and no record exists under any of the ids."""
    from gamead_core.config import GameadSettings
    from gamead_core.queue.dlq import DeadLetters
    from gamead_core.queue.topology import consumer_config, ensure_topology
    from gamead_core.store.ads import AdStore
    from gamead_core.telemetry.metrics import POISON
    from gamead_core.worker.mover import stranded, sweep
    from gamead_core.worker.poison_trace import read_trace

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    d, e = new_ad_id(), new_ad_id()
    settings = GameadSettings()
    before = {r: POISON.labels(r)._value.get() for r in ("id_mismatch", "bad_ad_id")}  # type: ignore[attr-defined]

    async def strand_and_sweep() -> tuple[Any, Any]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            old = consumer_config(3, settings.queue)
            old.max_deliver, old.ack_wait = 1, 1.0
            await js.add_consumer(names.ADS_STREAM, old)  # what an older gamead configured
            await js.publish(names.level_subject(3), _record(d), headers={names.HDR_AD_ID: e})
            await js.publish(names.level_subject(3), _record("NOT-AN-ID"), headers={names.HDR_AD_ID: "NOT-AN-ID"})
            sub = await js.pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)
            assert len(await sub.fetch(2, timeout=5)) == 2  # delivered once, never acknowledged
            for _ in range(100):  # JetStream gives up at its next look at the pending list
                if len(await stranded(js, 3)) == 2:
                    break
                await asyncio.sleep(0.1)
            report = await sweep(js, await AdStore.open(nc, js), DeadLetters(js), settings)
            await ensure_topology(js, settings)  # back to max_deliver -1
            for _ in range(100):  # written in the background, at most once a second (review31 R6)
                trace = await read_trace(js)
                if trace is not None and trace["count"] == 2:
                    break
                await asyncio.sleep(0.1)
            return report, trace
        finally:
            await nc.close()

    report, trace = asyncio.run(strand_and_sweep())
    assert (report.requeued, report.removed) == (0, 2), report
    assert _work_messages(server.url) == 0
    with httpx.Client(base_url=url, timeout=10) as http:
        for ad_id in (d, e):
            assert http.get(f"/ads/{ad_id}").status_code == 404, ad_id
    assert trace is not None and trace["byReason"] == {"id_mismatch": 1, "bad_ad_id": 1}, trace
    assert {r: POISON.labels(r)._value.get() - n for r, n in before.items()} == {  # type: ignore[attr-defined]
        "id_mismatch": 1, "bad_ad_id": 1}
