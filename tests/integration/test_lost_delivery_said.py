"""attack40b F4: a delivery lost between nats-server and the worker waited ``queue.ack_wait`` and came back with no
line at all (``gamead_redeliveries_total`` counted it; nothing said which ad, or why). Now the redelivery is judged
(:mod:`gamead_core.worker.redelivery`) and a lost one says so in one WARNING line; a hand-back (a ``nak``) says
nothing at WARNING. Real nats-server, API and worker processes; the worker's connection goes through a proxy
(:class:`tests.nats_filter.PublishFilter`) that swallows one delivery on its way (``lose_deliveries``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import nats
import nats.errors

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.nats_filter import PublishFilter
from tests.support import Proc, ad, start_api, start_worker, wait_for, wait_terminal

ACK_WAIT = 5.0
ENV = {"GAMEAD_QUEUE__ACK_WAIT": f"{ACK_WAIT:g}", "GAMEAD_QUEUE__IDLE_WAIT": "0.5"}
WORKER_ENV = {**ENV, "GAMEAD_LOG__LEVEL": "DEBUG"}  #: a hand-back's line is DEBUG
LEVEL_3_PULLS = names.pull_next_subject(names.work_stream(), names.level_consumer(3))  #: a worker's pulls of level 3


def _redelivery_lines(worker: Proc, ad_id: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("ad_id") == ad_id and "redelivery" in line]


async def _no_pull_waiting(url: str) -> None:
    """Wait (20 s at most) until level 3's consumer holds no pull request (the worker's long polls expired)."""
    nc = await nats.connect(url)
    try:
        js, deadline = nc.jetstream(), asyncio.get_running_loop().time() + 20
        while (await js.consumer_info(names.work_stream(), names.level_consumer(3))).num_waiting:
            assert asyncio.get_running_loop().time() < deadline, "the worker's pull requests never expired"
            await asyncio.sleep(0.05)
    finally:
        await nc.close()


async def _nak_one(url: str, held_past: float = 0.0) -> int:
    """Pull one ad of level 3 as a worker would and hand it back (``nak``, no delay); its stream sequence. With
    ``held_past``: only once its message is that many seconds old, renewed (in-progress acks) meanwhile, as a busy
    worker's prefetched ad of a backlog."""
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(names.level_consumer(3), stream=names.work_stream())
        try:
            msg = (await sub.fetch(1, timeout=10))[0]
        except nats.errors.TimeoutError:
            raise AssertionError("level 3 delivered nothing to the other client in 10 s: did the worker take it?")
        stored = msg.metadata.timestamp.timestamp()
        while time.time() - stored < held_past:  # its age (this machine's clock is nats-server's)
            await msg.in_progress()
            await asyncio.sleep(min(1.0, ACK_WAIT / 3))
        await msg.nak()
        return msg.metadata.sequence.stream
    finally:
        await nc.close()


def _handed_back_by_another(http: httpx.Client, proxy: PublishFilter, server: EmbeddedNats, worker: Proc,
                            title: str, held_past: float = 0.0) -> tuple[dict[str, object], dict[str, object]]:
    """Submit an ad that another client takes (the worker's pulls lost meanwhile) and hands back (``_nak_one``);
    its final record once the worker ran it, and the worker's line of its redelivery (DEBUG ones included)."""
    proxy.drop(LEVEL_3_PULLS)  # the worker's pulls of level 3 go nowhere while the other client takes it
    dropped = proxy.dropped
    # A pull let through just before the drop may reach nats-server after a look that found none waiting, and take
    # the ad (CI, d34252d6: the other client's fetch got nothing in 10 s). The worker's pulls of level 3 go out in
    # order on its one connection, so once one was swallowed, every earlier one has left the proxy; the fence (a
    # PING after them on that connection, its PONG back) says nats-server has read them.
    wait_for(lambda: proxy.dropped > dropped, timeout=30, what="a pull of level 3 by the worker swallowed")
    proxy.fence()
    asyncio.run(_no_pull_waiting(server.url))
    ad_id = http.post("/ads", json=ad(title, 3)).json()["id"]
    asyncio.run(_nak_one(server.url, held_past))
    proxy.pass_all()
    final = wait_terminal(http, ad_id, timeout=60)
    wait_for(lambda: _redelivery_lines(worker, ad_id), timeout=10, what=f"the redelivery line of {title!r}")
    said = _redelivery_lines(worker, ad_id)
    assert len(said) == 1, said
    return final, said[0]


def test_a_delivery_lost_on_its_way_is_said_at_its_redelivery_and_a_hand_back_is_not_a_warning(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], procs: list[Proc],
        tmp_path: Path) -> None:
    """One delivery of ad A swallowed on its way to the worker: A comes back after ``ack_wait`` (5 s) and the
    worker writes one WARNING ``redelivery: lost`` line naming A, delivery 2, the seconds since its store (at least
    ack_wait) and the ack_wait; A completes once, its record's ``delivery`` saying the 2nd delivery ran it. Ads B
    and C, taken and handed back (``nak``) by another client, are run at their 2nd delivery with a DEBUG line only:
    B at once, C only once its message is older than ack_wait (a busy worker's prefetched ad of a backlog), which
    only nats-server's nak advisory tells apart from a loss (:mod:`gamead_core.worker.naks_seen`). Without the
    fix: no line for A (0 of 1); without the advisories: C's redelivery a WARNING ``lost`` (1 of 1)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    worker = start_worker(proxy.url, tmp_path, worker_id="w", ready=True, **WORKER_ENV)
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=30) as http:
        proxy.lose_deliveries(names.work_subject_prefix() + ".", 1)
        lost_id = http.post("/ads", json=ad("Lost on its way", 3)).json()["id"]
        final = wait_terminal(http, lost_id, timeout=60)
        assert proxy.lost == 1, f"{proxy.lost} deliveries swallowed"
        wait_for(lambda: _redelivery_lines(worker, lost_id), timeout=10, what="the redelivery's line")
        said = _redelivery_lines(worker, lost_id)
        print(f"ad {lost_id}: {final['status']} delivery {final['delivery']} attempts {final['attempts']}; "
              f"lines: {said}")
        assert len(said) == 1 and said[0]["level"] == "WARNING" and said[0]["redelivery"] == "lost", said
        line = said[0]
        assert line["deliveries"] == 2 and line["ack_wait_s"] == ACK_WAIT, line
        assert float(line["stored_ago_s"]) >= ACK_WAIT - 0.25, line  # (clock slack: redelivery.CLOCK_SLACK)
        assert final["status"] == "completed" and final["attempts"] == 1 and str(final["delivery"]).endswith(".2")

        soon = _handed_back_by_another(http, proxy, server, worker, "Handed back")
        late = _handed_back_by_another(http, proxy, server, worker, "Handed back late", held_past=ACK_WAIT + 1)
    print(f"hand-backs said: {[line for _, line in (soon, late)]}")
    for final, line in (soon, late):
        assert final["status"] == "completed" and str(final["delivery"]).endswith(".2"), final
        assert (line["level"], line["redelivery"]) == ("DEBUG", "nak"), line
    assert float(late[1]["stored_ago_s"]) >= ACK_WAIT, late[1]  # a loss by its age alone
