"""A worker stopping cleanly hands back the ad the server gave its long poll just before the stop (chaos47 F1).

The drill: `gamead up --workers 3` at 300 ads/s, a worker drained (SIGTERM) every 8 s; 1 ad in 8 drains waited the
level consumer's ``ack_wait`` (30 s) before any worker ran it, its next delivery logged "no hand-back (nak) of
it: that delivery was lost on its way to a worker". The stop unsubscribed its inboxes at once, so a delivery the
server had sent before it took the ``UNSUB`` reached a subscription nats-py had already forgotten. Here the
worker's connection goes through a proxy that holds the ad's delivery (and the server's bytes after it) for a
moment while the worker is told to stop: a user sees the ad completed by the next worker within seconds, not
after ``ack_wait`` (120 s here). Real nats-server, API and worker processes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.long_poll import STOP_WAIT
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from tests.nats_filter import PublishFilter
from tests.support import Proc, ad, start_api, start_worker, wait_for, wait_terminal

#: seconds the proxy holds the ad's delivery to the stopping worker: longer than the worker takes to begin its
#: stop once told (a few ms), shorter than its wait for the server to confirm the UNSUB (long_poll.STOP_WAIT, 2 s)
HOLD = 1.5


def test_an_ad_delivered_as_its_worker_stops_goes_to_the_next_worker_at_once(
    fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], procs: list[Proc], tmp_path: Path
) -> None:
    _stop_with_a_delivery_on_its_way(fresh_nats, links, procs, tmp_path, lost_at_unsub=False)


def test_an_ad_the_server_routes_as_its_worker_unsubscribes_goes_to_the_next_worker_at_once(
    fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], procs: list[Proc], tmp_path: Path
) -> None:
    """chaos47 F2: nats-server checks a long poll's listener when it picks the request and routes the delivery on
    another goroutine: an ``UNSUB`` taken between the two loses the ad there (counted delivered): it waited
    ``ack_wait`` (30 s), 4 ads in 24 drains. The proxy plays that server: the held delivery is swallowed if the
    worker unsubscribed meanwhile. The stopping worker keeps its inboxes until its long polls have ended."""
    proxy = _stop_with_a_delivery_on_its_way(fresh_nats, links, procs, tmp_path, lost_at_unsub=True)
    assert proxy.lost == 0  # it listened until the delivery came, and handed it back


def test_a_stopping_worker_waits_for_its_long_polls_no_longer_than_its_drain_allows(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture
) -> None:
    """``queue.idle_wait`` may be up to 300 s, but ``gamead up`` SIGKILLs a stopping worker ``worker.drain_timeout``
    + 5 s into its stop: the wait for its live long polls ends ``drain_timeout`` + 2 s in (the drain's bound). It
    says so first, with that bound (attack57b: an idle worker took up to ``queue.idle_wait`` to stop, no word why)."""
    caplog.set_level(logging.INFO, logger="gamead_core.queue.long_poll")
    server = fresh_nats()

    async def go() -> None:
        settings = GameadSettings(queue={"idle_wait": 120})
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            puller = AgingPuller(nc, js, settings.queue)
            await puller.start()
            assert await puller.pull(1) == []  # an empty queue: every level long-polled from now on
            await puller.wait_for_work(puller.published, 0)  # the long polls are placed (120 s each)
            await nc.flush()
            async with asyncio.timeout(30):  # before the bound: the polls' 120 s
                await puller.stop(drain=1.0)
        finally:
            await nc.close()

    asyncio.run(go())
    said = [re.match(r"stopping: waiting up to (\d+\.\d)s for (\d+) long polls? at NATS to end \(queue.idle_wait\): "
                     "NATS cannot cancel one, and an ad one brings meanwhile is handed back at once", r.getMessage())
            for r in caplog.records]
    waits = [(float(m[1]), int(m[2])) for m in said if m]
    assert len(waits) == 1 and 0 < waits[0][0] <= 1.0 + STOP_WAIT and waits[0][1] >= 1, caplog.text  # none before


def _stop_with_a_delivery_on_its_way(fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter],
                                     procs: list[Proc], tmp_path: Path, *, lost_at_unsub: bool) -> PublishFilter:
    server = fresh_nats()
    env = {"GAMEAD_QUEUE__ACK_WAIT": "120"}
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    leaving = start_worker(proxy.url, tmp_path, worker_id="leaving", ready=True, **env)
    procs.append(leaving)
    # idle, its long polls wait at the server: the ad's delivery to it is held on the way
    proxy.stall_deliveries(after=0, seconds=HOLD, subject=names.level_subject(3))
    if lost_at_unsub:
        proxy.lose_unsubscribed()
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/ads", json=ad("Caught Leaving", 3))
        assert answer.status_code == 202, answer.text
        ad_id = answer.json()["id"]
        wait_for(lambda: proxy.holds == 1, timeout=20, what="the ad's delivery to the leaving worker")
        leaving.signal(signal.SIGTERM)
        wait_for(lambda: not leaving.alive(), timeout=30, what="the leaving worker to exit")
        assert leaving.popen is not None and leaving.popen.returncode == 0, leaving.output()[-2000:]
        assert "stopping: waiting up to" in leaving.output(), leaving.output()[-2000:]  # why its stop takes seconds
        taker = start_worker(server.url, tmp_path, worker_id="taker", ready=True, **env)
        procs.append(taker)
        record = wait_terminal(client, ad_id, timeout=30)
    assert record["status"] == "completed", record
    assert record["workerId"] == "taker" and record["attempts"] == 1, record
    return proxy
