"""quiet48: after a nats-server restart an idle worker took its long polls for live until they expired.

A restarted server keeps no pull request: the worker's long polls are gone, but it still counted them live (and its
quiet spell, which they vouched for, held), so it neither put them back nor looked at the queue, and the next ad
waited out ``queue.idle_wait`` (120 s in a test). Now a reconnection forgets them (:mod:`gamead_core.queue.long_poll`):
the next look puts them back, and the ad is handed over at once.

A real nats-server, stopped and started again on its port (its file store keeps the streams and consumers); the
puller loop is the worker's (pull, then wait for work up to ``queue.idle_poll``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats
import nats.errors

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from gamead_core.shutdown import close_for_good

IDLE_WAIT = 120.0  #: queue.idle_wait: a long poll of before the restart would be believed live this long
DEADLINE = 15.0  #: the ad must be handed over well within it (before: ~IDLE_WAIT)


def test_an_idle_worker_puts_its_long_polls_back_after_a_nats_restart(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Figure before: the ad published after the restart was not pulled within 15 s (the long polls counted live
    until 120 s after they were placed); now it is, through a long poll put back after the reconnection."""
    server = fresh_nats()
    settings = GameadSettings(queue={"idle_wait": IDLE_WAIT, "idle_poll": 0.5})

    async def go() -> str | None:
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream()
        await ensure_topology(js, settings)
        puller = AgingPuller(nc, js, settings.queue)
        await puller.start()
        try:
            assert await puller.pull(1) == []  # a fresh look at an empty queue: quiet, every level long-polled
            await puller.wait_for_work(puller.published, 0)  # the long polls are placed
            await nc.flush()
            server.kill()  # as a crash would (a SIGTERM'ed server answers the long polls first, 409: that ends them)
            server.start()
            async with asyncio.timeout(DEADLINE):
                while not (nc.is_connected and nc.stats["reconnects"] >= 1):
                    await asyncio.sleep(0.05)
                while True:  # JetStream answers again after the restart
                    try:
                        await js.publish(names.level_subject(3), b"{}", headers={names.HDR_AD_ID: "after"}, timeout=1)
                        break
                    except (nats.errors.Error, asyncio.TimeoutError):
                        await asyncio.sleep(0.1)
            end = time.monotonic() + DEADLINE
            while time.monotonic() < end:  # the worker's idle loop (gamead_core.worker.runtime)
                seen = puller.published
                msgs = await puller.pull(1)
                if msgs:
                    await msgs[0].ack()
                    return msgs[0].headers[names.HDR_AD_ID]
                await puller.wait_for_work(seen, min(settings.queue.idle_poll, max(0.0, end - time.monotonic())))
            return None
        finally:
            await puller.stop(answering=False)
            await close_for_good(nc)  # its server may be gone (a restart that failed): bounded (closes52)

    got = asyncio.run(go())
    assert got == "after", f"the ad published after the restart was not handed over within {DEADLINE:g} s"
