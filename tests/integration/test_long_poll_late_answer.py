"""poll54: a long poll's late answer was taken for the end of the worker's next long poll on the same level.

The worker counts a long poll live from just before it sends it until ``queue.idle_wait`` after; nats-server counts
from when it takes the request, later. So the worker may put a new long poll on a level while the old one still
waits at the server, and the old one's answer comes after that: its 408 (expired), or an ad the server gives it (it
serves the oldest request first). Before, every long poll of a level had one reply subject and that answer was taken
for the new one's end: the worker counted the level unwatched and put another long poll beside the one still
waiting, so the server held two pull requests for one idle worker's level (consumer info ``num_waiting`` 2, the
worker counting one). Now each long poll has its own reply subject and an answer ends only its own
(:mod:`gamead_core.queue.polls_out`).

A real nats-server; the worker's connection goes through a proxy (:class:`tests.nats_filter.PublishFilter`) that makes
the race certain however loaded the machine: it holds the old long poll's 408 until the new one is placed, or holds
the old long poll itself on its way, so that the server's end of it is seconds later than the worker's count. Only
level 1 is long-polled (the other levels unreadable), so its consumer's ``num_waiting`` is this worker's alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.long_poll import POLL_MARGIN, LongPolls
from gamead_core.queue.topology import ensure_topology
from gamead_core.shutdown import close_for_good
from tests.long_polled import counted
from tests.nats_filter import PublishFilter
from tests.waits import until

KEY = (1, 0)  #: (level, partition) long-polled
LIFE = 4.0  #: queue.idle_wait of the late-408 case: the old long poll's life, waited out; the new one's, checked in
HELD = 4.0  #: seconds the proxy holds the old long poll on its way (the served-late case)
#: queue.idle_wait of that case: shorter than HELD, so the worker's count of the old one's life ends first, by less
#: than POLL_MARGIN (a long poll unanswered that long past its life is taken for lost with its server)
SHORT_LIFE = 3.8
DEADLINE = 10.0  #: an ad published to a watched level reaches the worker well within it (ms unloaded)


async def _waiting(js: JetStreamContext, want: int | None = None) -> int | bool:
    """Pull requests waiting at nats-server on level 1's consumer (partition 0): JetStream's own count (with
    ``want``: whether it is that)."""
    count = (await js.consumer_info(names.work_stream(), names.level_consumer(1))).num_waiting or 0
    return count if want is None else count == want


async def _next_step_counted(nc: nats.NATS, polls: LongPolls, js: JetStreamContext) -> int:
    """The worker's next step (its long polls put back where it counts none live), every request it sent counted by
    the server (a marker pull on the worker's own connection after them: tests.long_polled.counted); the server's
    count of waiting pull requests."""
    await nc.flush()  # the answers on their way came first: the worker has taken them
    await polls.place()
    await counted(nc, (1,))
    return await _waiting(js)


async def _publish(js: JetStreamContext, polls: LongPolls, ad_id: str) -> None:
    """Publish an ad to level 1 and wait for a long poll of the worker to bring it."""
    seen = polls.published
    await js.publish(names.level_subject(1), b"{}", headers={names.HDR_AD_ID: ad_id})
    await until(lambda: polls.published > seen, timeout=DEADLINE, what=f"ad {ad_id} brought by a long poll")
    assert [m.headers[names.HDR_AD_ID] for m in polls.take(1) if m.headers] == [ad_id]


def _run(server: EmbeddedNats, proxy: PublishFilter, idle_wait: float,
         case: Callable[[nats.NATS, LongPolls, JetStreamContext], Awaitable[None]]) -> None:
    async def go() -> None:
        direct = await nats.connect(server.url)
        nc = await nats.connect(proxy.url)
        try:
            js = direct.jetstream()
            await ensure_topology(js, GameadSettings())
            polls = LongPolls(nc, idle_wait, range(1), lambda level: level == KEY[0])
            await polls.start()
            try:
                await case(nc, polls, js)
            finally:
                await polls.stop(answering=False)
        finally:
            await close_for_good(nc)  # its proxy may still hold the server's bytes: bounded
            await direct.close()

    asyncio.run(go())


def test_the_old_long_polls_late_408_leaves_the_new_one_counted(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter]) -> None:
    """Figure before: the server held 2 pull requests on level 1 after the worker's next step (the late 408 taken for
    the new long poll's end, a third placed beside it); now 1, the worker counting 1, and an ad comes at once."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)

    async def case(nc: nats.NATS, polls: LongPolls, js: JetStreamContext) -> None:
        proxy.stall_deliveries(after=0, seconds=None, subject="_INBOX.")  # the server's next answer to us is held
        await polls.place()  # the old long poll
        await until(lambda: proxy.holds == 1, timeout=LIFE + 20, what="the old long poll's 408, held on its way")
        await until(lambda: not polls.watched(KEY), what="the old long poll's life up by the worker's count")
        await polls.place()  # the new one, while the old one's 408 is still on its way
        await until(lambda: _waiting(js), what="the new long poll waiting at the server")
        proxy.release()
        assert await _next_step_counted(nc, polls, js) == 1, "pull requests waiting for one worker's level"
        assert polls.out(KEY) == 1 and polls.watched(KEY)
        await _publish(js, polls, "urgent")
        assert (await _waiting(js), polls.out(KEY)) == (0, 0)

    _run(server, proxy, LIFE, case)


def test_an_ad_the_old_long_poll_brings_leaves_the_new_one_counted(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter]) -> None:
    """The old long poll reached the server HELD s late: when the worker's count of its life is up, it still waits
    there, and the new long poll waits behind it; an ad goes to the old one. Figure before: after the worker's next
    step the server held 2 pull requests on level 1 (the ad taken for the new one's answer, a third placed); now 1."""
    assert 0 < HELD - SHORT_LIFE < POLL_MARGIN
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)

    async def case(nc: nats.NATS, polls: LongPolls, js: JetStreamContext) -> None:
        proxy.hold(names.pull_next_subject(names.work_stream(0), names.level_consumer(*KEY)), HELD)
        await polls.place()  # the old long poll, held on its way
        await until(lambda: _waiting(js), timeout=HELD + 20, what="the old long poll waiting at the server")
        proxy.pass_all()
        assert not polls.watched(KEY)  # SHORT_LIFE < HELD: the worker's count of its life is up
        await polls.place()  # the new one, behind the old one still waiting at the server
        await until(lambda: _waiting(js, 2), what="both long polls waiting at the server")
        await _publish(js, polls, "old")  # served to the oldest request: the old long poll
        assert await _next_step_counted(nc, polls, js) == 1, "pull requests waiting for one worker's level"
        assert polls.out(KEY) == 1 and polls.watched(KEY)

    _run(server, proxy, SHORT_LIFE, case)
