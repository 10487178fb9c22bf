"""Brief prefetch15 (an attacker's finding): after scale changes ONE worker hoarded hundreds of unstarted ads in its
prefetch buffer (``holding`` 301 with 4 slots) while other workers idled, and said ``inFlight`` 5-8 with 4 slots.
The bound checked here, on the worker's own registry entry (heartbeats and held-ads announcements) all through a
run: never more than ``worker.prefetch`` buffered (unstarted) ads beside its running ones, and ``inFlight`` (the
analyses running) never above ``worker.concurrency``. Real nats-server, API and worker processes."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from tests.long_polled import wait_long_polled, waiting_pulls
from tests.support import (
    Proc,
    ad,
    hangs_once,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

FAST = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3", "GAMEAD_QUEUE__ACK_WAIT": "90"}
SLOW = {"GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "300"}
CAP = 8  #: worker.prefetch here
SLOTS = 4
ADS = 1500


class Watch:
    """Every value of the registry entry of ``worker_id`` (a KV watch: each heartbeat and announcement)."""

    def __init__(self, url: str, worker_id: str) -> None:
        self.url, self.key = url, node_key(worker_id)
        self.most_in_flight = 0
        self.seen = 0
        self.most_holding = 0
        self.ever_started: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Watch:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def started(self, ad_id: str) -> bool:
        """True once an entry showed ``ad_id`` held with its ``started`` flag."""
        return ad_id in self.ever_started

    async def _run(self) -> None:
        nc = await nats.connect(self.url)
        try:
            kv = await nc.jetstream().key_value(names.REGISTRY_BUCKET)
            watcher = await kv.watch(self.key)
            while not self._stop.is_set():
                try:
                    entry = await watcher.updates(timeout=0.5)
                except Exception:  # noqa: BLE001, S112 - nats-py's timeout: look at the stop flag
                    continue
                if entry is None or not entry.value:
                    continue
                doc = json.loads(entry.value)
                held = doc.get("holding", [])
                self.seen += 1
                self.ever_started.update(h["adId"] for h in held if h.get("started"))
                self.most_holding = max(self.most_holding, len(held))
                self.most_in_flight = max(self.most_in_flight, int(doc.get("inFlight", 0)))
            await watcher.stop()
        finally:
            await nc.close()


def test_a_worker_never_hoards_beyond_its_prefetch_while_others_come_and_go(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """1,500 ads over the 5 priorities; worker 'keeper' (4 slots, 300 ms analyses, ``worker.prefetch: 8``) runs all
    along while worker 'comer' (4 slots) starts and is stopped (SIGTERM: its buffer and drained ads handed back,
    redelivered with their old aging keys) three times, 300 ads/s arriving meanwhile. 'keeper''s entry never shows
    ``inFlight`` above its 4 slots (before: 6-8: ``len(held) - len(buffer)`` counted ads analysed whose outcome
    was being written, slot given back), nor holding beyond running + ``worker.prefetch`` + a few settling."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **FAST)
    procs.append(api)
    http = httpx.Client(base_url=url, timeout=30)
    try:
        ads = [ad(f"Hoard {i}", 1 + i % 5) for i in range(ADS)]

        def submit() -> None:  # 300 ads/s, as the finding's `gamead submit --rate`
            with httpx.Client(base_url=url, timeout=30) as feed:
                for i in range(0, ADS, 30):
                    resp = feed.post("/ads/batch", json={"ads": ads[i:i + 30]})
                    assert resp.status_code == 200, resp.text
                    time.sleep(0.1)

        feeder = threading.Thread(target=submit, daemon=True)
        env = {**FAST, **SLOW, "GAMEAD_WORKER__PREFETCH": str(CAP),
               "GAMEAD_WORKER__PREFETCH_WAIT": "0"}  # the buffer always at its full bound, never handed back
        with Watch(server.url, "keeper") as watch:
            keeper = start_worker(server.url, tmp_path, worker_id="keeper", concurrency=SLOTS, **env)
            procs.append(keeper)
            feeder.start()
            for round_ in range(3):
                comer = start_worker(server.url, tmp_path, worker_id=f"comer{round_}", concurrency=SLOTS, **env)
                procs.append(comer)
                wait_for(lambda c=comer: "worker started" in c.output(), timeout=30, what="comer to start")
                wait_for(lambda: watch.seen > 0, timeout=30, what="keeper's entry")
                time.sleep(2)  # a run of work for both, then comer hands its ads back (no assert on time)
                comer.signal(signal.SIGTERM)
                wait_for(lambda c=comer: not c.alive(), timeout=30, what="comer to exit")

            feeder.join(timeout=60)
            alone = watch.seen  # keeper alone with the backlog a while longer: 10 more of its entries (~5 s idle)
            wait_for(lambda: watch.seen >= alone + 10, timeout=60, what="10 more entries of keeper alone")
        print(f"keeper: most inFlight {watch.most_in_flight}, "
              f"{watch.seen} entries seen, most holding {watch.most_holding}")
        print("\n".join(line for line in keeper.output().splitlines() if "handing back" in line))
        assert watch.seen > 10
        assert "invariant broken" not in keeper.output()
        # running + buffered (≤ prefetch_depth ≤ CAP) + settling ones (analysed, outcome being written: a few)
        assert watch.most_holding <= 2 * SLOTS + CAP, watch.most_holding
        assert watch.most_in_flight <= SLOTS, watch.most_in_flight
    finally:
        http.close()


def test_ads_long_polls_bring_beyond_the_free_slot_are_handed_back_not_buffered(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """The mechanism: a busy worker's long polls (one per level) each bring an arriving ad whatever its slots
    can take, and its next step took them all for one free slot. Worker 'one' (1 slot, ``worker.prefetch: 0``)
    runs 'First' (P3) while one ad arrives in each other level: when 'First' ends, it starts the best (P1) and
    hands the other 3 back at once (before: buffered, holding 4-5 with 1 slot and a bound of 0). Each completes,
    with 1 attempt (a hand-back is not charged); ``inFlight`` never above 1.

    What it needs is timing-free: the other levels' long polls live while the others arrive, and the others arrive
    together. A busy worker does not renew its long polls, which live ``queue.idle_wait`` (default 5 s: one could
    expire between 'First' starting and the others arriving), and four single submits on a loaded machine can
    each land after the last finished. Stop 27's CI run saw neither a hand-back nor a holding above 1. So the long
    polls live 120 s here, past the whole test, and the others come in one ``POST /ads/batch``, P1 first. And
    'First' hangs (``worker.faults`` ``hang`` on its first attempt, cut at ``worker.task_timeout`` 8 s; its second
    attempt completes) instead of running a 1.5 s analysis: at load 10 the batch's answer came after 1.5 s, the
    worker idle again, and nothing was handed back (session 30). And 'First' is posted once the worker's first look
    placed its long polls: posted before, it was pulled by that look, no long poll waited while it ran, and nothing
    was handed back (session 37, under load; flake38: :mod:`tests.long_polled`)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **FAST)
    procs.append(api)
    http = httpx.Client(base_url=url, timeout=30)
    try:
        with Watch(server.url, "one") as watch:
            one = start_worker(server.url, tmp_path, worker_id="one", concurrency=1, ready=True, **FAST,
                               **hangs_once("First", task_timeout=8))
            procs.append(one)
            wait_long_polled(server.url, what="'one' idle, its long polls placed")  # (tests.long_polled)
            first = http.post("/ads", json=ad("First", 3)).json()["id"]
            wait_for(lambda: watch.started(first), timeout=20, what="'one' to run 'First'")
            # its other levels' long polls waiting (level 3's, used up by 'First', stays down: no room, churn52)
            wait_for(lambda: all(waiting_pulls(server.url, (1, 2, 4, 5)).values()), timeout=20, interval=0.1,
                     what="'one' busy with 'First', its other levels' long polls waiting")
            batch = http.post("/ads/batch", json={"ads": [ad(f"Other {p}", p) for p in (1, 2, 4, 5)]})
            others = [r["id"] for r in batch.json()["results"]]
            records = [wait_terminal(http, i, timeout=60) for i in [first, *others]]
        print(f"one: most holding {watch.most_holding}, most inFlight {watch.most_in_flight}")
        assert [r["status"] for r in records] == ["completed"] * 5
        assert [r["attempts"] for r in records] == [2, 1, 1, 1, 1]  # 'First' hung once; a hand-back is not charged
        assert str(records[1]["completedAt"]) < min(str(r["completedAt"]) for r in records[2:])  # P1 next
        assert "beyond the buffer's bound" in one.output()
        assert "invariant broken" not in one.output()
        assert watch.most_holding <= 2, watch.most_holding  # 1 running + 1 settling at most
        assert watch.most_in_flight <= 1, watch.most_in_flight
    finally:
        http.close()
