"""poll54, the same kind on the ``no_wait`` path: a pull's late status ended the level's next pull.

A level's ``no_wait`` pulls (:func:`gamead_core.queue.pull_request.pull_no_wait`) all had the inbox's one reply
subject. A pull not answered within ``PULL_TIMEOUT`` gives up (the level counts failing, tried again after its
back-off); its answer, a 404 (nothing there), could come after the next pull was asked, and was taken for that one's
end: the next pull returned nothing though an ad waited for it. Now each pull has its own reply subject under the
inbox, and a status ends only the pull it was sent to (as the long polls': test_long_poll_late_answer.py).

A real nats-server; the worker's connection goes through a proxy (:class:`tests.nats_filter.PublishFilter`) that holds
the first pull's 404 until the next pull is answered, so the late answer comes first however loaded the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue import pull_request
from gamead_core.queue.level_health import LevelHealth
from gamead_core.queue.long_poll import LongPolls
from gamead_core.queue.pull_request import pull_no_wait
from gamead_core.queue.topology import ensure_topology
from gamead_core.shutdown import close_for_good
from tests.nats_filter import PublishFilter
from tests.waits import until

KEY = (1, 0)  #: (level, partition) pulled
GAVE_UP = 0.2  #: PULL_TIMEOUT of the first pull: it gives up while its answer is held
PATIENT = 30.0  #: PULL_TIMEOUT of the next: it waits for the held bytes, however loaded the machine


def test_an_earlier_pulls_late_404_does_not_end_the_next_pull(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], monkeypatch: pytest.MonkeyPatch) -> None:
    """Figure before: the next pull returned [] (the late 404 taken for its end) with the ad delivered to it; now it
    returns that ad."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)

    async def go() -> list[str]:
        direct = await nats.connect(server.url)
        nc = await nats.connect(proxy.url)
        try:
            js = direct.jetstream()
            await ensure_topology(js, GameadSettings())
            polls = LongPolls(nc, 30.0, range(1), lambda level: level == KEY[0])  # its inboxes (none long-polled)
            await polls.start()
            health = LevelHealth()
            inbox, reply = polls.inbox[KEY], polls.reply[KEY]
            try:
                proxy.stall_deliveries(after=0, seconds=None, subject="_INBOX.")  # the server's next answer is held
                monkeypatch.setattr(pull_request, "PULL_TIMEOUT", GAVE_UP)
                assert await pull_no_wait(nc, inbox, reply, level=1, partition=0, want=1, health=health) == []
                await until(lambda: proxy.holds == 1, what="the first pull's 404, held on its way")
                await js.publish(names.level_subject(1), b"{}", headers={names.HDR_AD_ID: "waiting"})
                await until(lambda: health.readable(1), what="the level's back-off after the pull that gave up")
                monkeypatch.setattr(pull_request, "PULL_TIMEOUT", PATIENT)
                nxt = asyncio.ensure_future(pull_no_wait(nc, inbox, reply, level=1, partition=0, want=1,
                                                         health=health))

                async def delivered() -> bool:  # the next pull was answered with the ad (held behind the 404)
                    info = await js.consumer_info(names.work_stream(), names.level_consumer(1))
                    return (info.num_ack_pending or 0) == 1

                await until(delivered, what="the ad delivered to the next pull")
                proxy.release()
                got = await asyncio.wait_for(nxt, PATIENT + 10)
                return [m.headers[names.HDR_AD_ID] for m in got if m.headers]
            finally:
                await polls.stop(answering=False)
        finally:
            await close_for_good(nc)  # its proxy may still hold the server's bytes: bounded
            await direct.close()

    assert asyncio.run(go()) == ["waiting"]
