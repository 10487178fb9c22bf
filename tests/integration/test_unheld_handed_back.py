"""handback50: ``gamead doctor``'s ``ack_pending_unheld`` note and a live worker's handed-back ads.

A worker hands back (``nak``, at once) the prefetched ads it will not run: told quiet (``gamead workers quiet``), on a
drain, beyond its buffer's bound, after a stall. It stops announcing them at once (``holding``), but JetStream keeps
each one ack pending until a pull takes it again; with no pull waiting on its level (every worker full, or quiet)
that lasts. The doctor named them "a dead worker's last deliveries" while the worker was alive and well. Now a
worker announces the stream sequences it handed back in the last
:data:`~gamead_core.worker.handed.HANDED_BACK_FOR` s (``handedBack``), and the doctor counts them held.

Real nats-server, API and worker process; the doctor runs in this process (:func:`tests.support.doctor_report`).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.doctor.model import Note, ReadStats
from gamead_core.doctor.unheld import Unheld
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.wire import CREATE_FENCE
from gamead_core.worker.handed import RecentHandBacks
from tests.support import Proc, ad, clean_env, doctor_report, run_gamead, start_api, start_worker, wait_for

ADS = 10  #: ads submitted to the one worker: 1 runs, the rest wait in its prefetch buffer
#: every analysis takes 60 s (the worker keeps its buffer: its slot stays busy, no stall hands it back before the
#: quiet does: prefetch_wait 0 keeps ``worker.prefetch`` ads), heartbeats every 0.5 s
SLOW = {"GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "60000", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5",
        "GAMEAD_WORKER__PREFETCH": "16", "GAMEAD_WORKER__PREFETCH_WAIT": "0", "GAMEAD_WORKER__DRAIN_TIMEOUT": "120"}


def _worker(http: httpx.Client, worker_id: str) -> dict[str, Any]:
    items = http.get("/v1/workers", params={"role": "worker"}).json().get("items") or []
    return next((n for n in items if n.get("id") == worker_id), {})


def _unheld(report: dict[str, object]) -> dict[str, Any] | None:
    return next((n for n in report.get("notes") or [] if n["kind"] == "ack_pending_unheld"), None)  # type: ignore


def _ack_pending(url: str) -> int:
    async def read() -> int:
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().consumer_info(names.ADS_STREAM, names.level_consumer(3))
            return int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    return asyncio.run(read())


@pytest.mark.parametrize("how", ["quiet", "drain"])
def test_a_live_workers_handed_back_prefetch_is_not_unheld(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, how: str) -> None:
    """One worker runs 1 ad and buffers 9; told quiet (``gamead workers quiet``), or draining (SIGTERM: its ad runs
    on for up to ``worker.drain_timeout``), it hands the 9 back and nobody pulls them (it is the only worker): they
    stay ack pending. Figure before: the doctor run right after noted ``ack_pending_unheld · 9`` (the live worker's
    hand-backs called a dead worker's); now no note, and the worker's entry says ``handedBack``."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    env = clean_env(GAMEAD_API_URL=url)
    with httpx.Client(base_url=url, timeout=20) as http:
        for n in range(ADS):  # a backlog first: the worker's first pull takes its slot's ad and buffers the rest
            assert http.post("/ads", json=ad(f"Buffered {n}", priority=3)).status_code in (200, 201, 202)
        worker = start_worker(server.url, tmp_path, worker_id="full-1", concurrency=1, ready=True, **SLOW)
        procs.append(worker)
        wait_for(lambda: len(_worker(http, "full-1").get("holding") or []) == ADS, timeout=30,
                 what="full-1 to hold every ad (1 running, the rest buffered)")  # its buffer's bound: 16
        if how == "quiet":
            told = run_gamead("workers", "quiet", "full-1", env=env)
            assert told.returncode == 0, told.stderr
        else:
            worker.signal(signal.SIGTERM)
        entry = wait_for(lambda: (e := _worker(http, "full-1")) and len(e.get("holding") or []) == 1 and e,
                         timeout=15, what="full-1 to hand its buffer back")
        assert _ack_pending(server.url) == ADS  # the 9 handed back wait for a pull that does not come
    report = doctor_report(server.url, settle=0.3)
    assert _unheld(report) is None, _unheld(report)  # before: count 9
    assert sum(map(len, (entry.get("handedBack") or {}).values())) == ADS - 1, entry.get("handedBack")


HANDED = 6  #: deliveries the live "worker" hands back, announced in its handedBack


def test_a_dead_workers_delivery_is_still_named_beside_a_live_workers_hand_backs(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """A live worker (a plain connection) takes 6 deliveries and hands them back, announcing them in ``handedBack``
    (nobody pulls them: they stay ack pending); a dead worker took one and never announced it. The note counts the
    dead one only (1; before the field was read: 7). An older worker's entry, without the field, reads as none."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": 120.0}})
    level = 2

    async def scenario() -> tuple[int, int]:
        nc = await nats.connect(server.url)
        doc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            sub = await js.pull_subscribe_bind(names.level_consumer(level), names.ADS_STREAM)
            await js.publish(names.level_subject(level), b"{}", headers={names.HDR_AD_ID: "dead-1"})
            assert len(await sub.fetch(1, timeout=10)) == 1  # the dead worker's: never announced, never acked
            for i in range(HANDED):
                await js.publish(names.level_subject(level), b"{}", headers={names.HDR_AD_ID: f"back-{i}"})
            msgs = await sub.fetch(HANDED, timeout=10)
            assert len(msgs) == HANDED
            handed = RecentHandBacks()
            handed.note(msgs, time.monotonic())
            registry = Registry(nc, js, settings.registry)
            started = utcnow()  # one process per id: its start time the same in every entry

            async def announce(worker_id: str, back: dict[str, list[int]]) -> None:
                await registry.put(NodeInfo(id=worker_id, role="worker", host="h", pid=4703, version="t",
                                            started_at=started, heartbeat_at=utcnow(), fence=CREATE_FENCE,
                                            handed_back=back))

            await announce("live-1", handed.wire(time.monotonic()))  # before its naks, as hand_back does
            await announce("older-1", {})  # an older worker: no handedBack in its entry
            for msg in msgs:
                await msg.nak()
            await nc.flush()

            async def unheld_count() -> int:
                infos = {(lvl, 0): await js.consumer_info(names.ADS_STREAM, names.level_consumer(lvl))
                         for lvl in names.LEVELS}
                assert infos[(level, 0)].num_ack_pending == HANDED + 1, "the hand-backs were not ack pending"
                check = Unheld(doc, doc.jetstream(), settings)
                stats, note = ReadStats(), Note("ack_pending_unheld")
                await check.first(infos, [], stats)
                await check.confirm(stats, note)
                return note.count

            named = await unheld_count()
            await announce("live-1", {})  # its hand-backs older than HANDED_BACK_FOR: named again
            return named, await unheld_count()
        finally:
            await doc.close()
            await nc.close()

    named, without = asyncio.run(scenario())
    assert named == 1, f"{named} unheld noted: only the dead worker's one delivery is"
    assert without == HANDED + 1, f"{without} unheld noted once the hand-backs were no longer announced"
