"""A pull feed's requests answered ``503`` (no responders) on a real nats-server (:mod:`gamead_core.queue.pull_feed`,
pullfeed43): a consumer deleted between requests ends the read once the refusals outlast the feed's bound, while a
consumer that is there (its leader's interest not known yet: flake42) is asked again until it answers."""

from __future__ import annotations

import asyncio
import time

import nats
import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue import pull_feed, pull_lost
from tests.nats_filter import PublishFilter
from tests.streams import filled_stream

TIMEOUT = 20.0  #: the reader's timeout: without the check a read of a deleted consumer re-asks for all of it


def test_a_read_whose_consumer_is_deleted_between_requests_ends_not_after_its_timeout(
        nats_server: EmbeddedNats) -> None:
    """review42c F2: after flake42 a ``503`` was always asked again, so a read whose consumer was deleted while no
    request was out (its two requests answered whole, 512 of 2,000 messages held) re-asked 20 times a second until
    its reader's timeout and did not end (``ended`` False, 396 requests after the delete in 20 s). Now refusals for
    the feed's bound (1.5 s) are checked once with the consumer's info: not found, the read ends, every message it
    held handed out first (with the check: ended, 30 requests after the delete)."""

    async def run() -> tuple[int, int, bool, float]:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, "GONE", [10] * 2_000)
            feed = await pull_feed.pull_feed(js, "gone.>", stream="GONE", config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL))
            try:
                read = [await feed.next_msg(timeout=TIMEOUT)]
                deadline = time.monotonic() + 10  # until no request is out: every one answered whole
                while time.monotonic() < deadline:
                    info = await feed.consumer_info()
                    if info.delivered.stream_seq >= 2 * pull_feed.REQUEST_MSGS and not info.num_waiting:
                        break
                    await asyncio.sleep(0.05)
                held = info.delivered.stream_seq
                asked = feed._asked
                await js.delete_consumer("GONE", feed._consumer)
                try:
                    while True:
                        read.append(await feed.next_msg(timeout=TIMEOUT))
                except nats.errors.TimeoutError:
                    pass
                assert len(read) == held, (len(read), held)
                return len(read), feed._asked - asked, feed.ended, pull_lost.bound(feed._lost_after, TIMEOUT)
            finally:
                await feed.unsubscribe()
        finally:
            await nc.close()

    read, asked, ended, bound = asyncio.run(run())
    assert 0 < read < 2_000
    assert ended
    # at most every request out asked again each REFUSED_PAUSE for the bound, twice over (a whole timeout: ~400)
    assert asked <= 2 * pull_feed.REQUESTS_OUT * bound / pull_lost.REFUSED_PAUSE, asked


def test_a_consumer_refused_longer_than_the_bound_that_is_there_is_asked_again_until_it_answers(
        nats_server: EmbeddedNats) -> None:
    """flake42 kept: a fresh consumer's requests refused ``503`` (a proxy sends them on to a subject no one listens
    on) for longer than the feed's bound: its info finds it, so the read keeps asking and, once the requests reach
    it, gets all 50 messages. The 70 refused replies are not taken for lost requests heard from (a slow link):
    before, 64 of them filled what the feed learns a slow link from (its set: 64 without the fix, 0 with)."""
    proxy = PublishFilter(("127.0.0.1", nats_server.port)).start()

    async def run() -> tuple[int, int]:
        direct = await nats.connect(nats_server.url)
        nc = await nats.connect(proxy.url)
        try:
            await filled_stream(direct.jetstream(), "KEPT", [10] * 50)
            js = nc.jetstream(timeout=10)
            feed = await pull_feed.pull_feed(js, "kept.>", stream="KEPT", config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL))
            try:
                proxy.refuse("$JS.API.CONSUMER.MSG.NEXT.KEPT.")
                first = asyncio.ensure_future(feed.next_msg(timeout=TIMEOUT))
                # 70 refusals: ≥ 3.4 s of them (each request out asked again ≥ REFUSED_PAUSE after its refusal),
                # more than twice the feed's bound (1.5 s): its consumer was checked at least once
                deadline = time.monotonic() + TIMEOUT / 2
                while proxy.refused < 70 and not first.done() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert proxy.refused >= 70, proxy.refused
                proxy.pass_all()
                read = [await first]
                while len(read) < 50:
                    read.append(await feed.next_msg(timeout=TIMEOUT))
                return len(read), len(feed._forgotten)
            finally:
                await feed.unsubscribe()
        finally:
            await nc.close()
            await direct.close()

    try:
        assert asyncio.run(run()) == (50, 0)
    finally:
        proxy.stop()
