"""The pull feed under the whole-stream reads (:mod:`gamead_core.queue.pull_feed`, left39a) on a real nats-server:
every message in stream order, a message bigger than one request's ``max_bytes`` (512 KiB) included, and many
reads at once on one connection never holding more than ``CONNECTION_BYTES`` asked for.

Figure without the oversize rule (checked by disabling it: every request of 512 KiB for a 700 KB message answered
``409 Message Size Exceeds MaxBytes``): no read got past the first big message, the test failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue import feed_room, pull_feed, scan
from gamead_core.queue.scan import read_stream
from tests.nats_filter import PublishFilter
from tests.streams import filled_stream, read_counts

BIG = 700_000  #: bytes of each big message: over one request's max_bytes, under nats-server's max_payload (1 MiB)


async def _read_all(url: str) -> tuple[list[int], int]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        sizes = [10, BIG, 20, 30, BIG, BIG, 40] + [4_000] * 500  # load57: 2,000 of them outran 5 s reads at load 35-52
        await filled_stream(js, "FEED", sizes)

        async def one() -> list[int]:
            # 30 s without a message: none of the 24 starved of the loop at load (the room, the order: what is tested)
            async with aclosing(read_stream(js, "FEED", "feed.>", timeout=30)) as msgs:
                return [len(m.data) async for m in msgs]

        most = 0
        room = feed_room.room_of(nc)[0]
        acquire = room.acquire

        async def held_after() -> bool:  # what the connection's reads hold of its room, at most: it grows only here
            # (load57: a watcher polling every turn of the loop kept it from ever waiting, the reads starved at load)
            nonlocal most
            taken = await acquire()
            most = max(most, feed_room.CONNECTION_BYTES // feed_room.REQUEST_BYTES - room._value)
            return taken

        room.acquire = held_after  # type: ignore[method-assign]
        reads = await asyncio.gather(*(one() for _ in range(24)))
        assert all(r == sizes for r in reads), [len(r) for r in reads]
        return sizes, most
    finally:
        await nc.close()


def test_reads_get_every_message_in_order_big_ones_too_within_the_connections_room(
        nats_server: EmbeddedNats) -> None:
    """24 reads at once of 507 messages (three of 700 KB): each gets all of them, in order; the units of room
    held at once never pass the connection's 32 (16 MiB). (pullfeed60: one of 24 ended after 363, at load: its
    requests taken for lost, a ``409 Batch Completed`` taken for the consumer's end; see the test below.)"""
    sizes, most = asyncio.run(_read_all(nats_server.url))
    assert len(sizes) == 507
    assert 0 < most <= feed_room.CONNECTION_BYTES // feed_room.REQUEST_BYTES


def test_more_reads_at_once_than_the_connection_has_room_for_all_end_whole(nats_server: EmbeddedNats) -> None:
    """attack39c F1: 100 reads at once on one connection of a 300-message stream (600 KB): each took its first unit of
    room and, with its messages delivered, waited for a second one, 32 of them holding the whole room: nobody read,
    and after 2 × 30 s (``wait_room``) 20 of the 100 ended ScanIncomplete ("5 s without one", which it was not).
    Now a read with a request out stops waiting for room once one of its messages is there: every read gets all
    300 messages."""

    async def run() -> list[int]:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, "CROWD", [2_000] * 300)
            return await read_counts(js, "CROWD", 100, timeout=5)
        finally:
            await nc.close()

    assert asyncio.run(run()) == [300] * 100


def test_a_lost_pull_request_is_asked_again(nats_server: EmbeddedNats) -> None:
    """CI of 61d0bab: on an R3 bucket of a 3-node cluster a fresh consumer's first pull request was lost on its way
    (its leader's interest not yet known to the client's server) and the listing ended ScanIncomplete, "0 messages
    read, then 2 s without one while NATS still held more". Here a proxy loses a read's first two pull requests:
    each request asks for idle heartbeats, and one heard nothing from for ``LOST_AFTER`` is asked again, so the read
    gets all 500 messages (without the rule: ScanIncomplete after 0)."""
    assert _read_losing(nats_server, "LOST", 500, lost=2) == 500


def _read_losing(nats_server: EmbeddedNats, stream: str, n: int, *, lost: int) -> int:
    """How many messages a read (5 s timeout) of a stream of ``n`` messages of 100 B gets through a proxy that loses
    its first ``lost`` pull requests (asserted lost)."""
    proxy = PublishFilter(("127.0.0.1", nats_server.port)).start()

    async def run() -> int:
        nc = await nats.connect(proxy.url)
        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, stream, [100] * n)
            proxy.drop(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.", count=lost)
            return (await read_counts(js, stream, 1, timeout=5))[0]
        finally:
            await nc.close()

    try:
        read = asyncio.run(run())
        assert proxy.dropped == lost
        return read
    finally:
        proxy.stop()


def test_a_slow_link_is_not_taken_for_lost_requests(nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone's loaded run of 302ed0d: three audit reads through a proxy holding every JetStream request 1 s
    took their own slow requests for lost every 1.5 s, and each re-ask (held 1 s, the rest behind it) slowed the
    others until one timed out (503 queue_unavailable). Here 3 reads of 300 messages through such a proxy: with the
    bound taken from the create's round trip, and doubled when a forgotten request is heard from, they send 9 pull
    requests (without: 23), each read whole."""
    asked = []
    ask = pull_feed.PullFeed._ask

    async def counted(self: pull_feed.PullFeed) -> None:
        before = self._asked
        await ask(self)
        asked.append(self._asked - before)

    monkeypatch.setattr(pull_feed.PullFeed, "_ask", counted)
    proxy = PublishFilter(("127.0.0.1", nats_server.port)).start()

    async def run() -> list[int]:
        direct = await nats.connect(nats_server.url)
        nc = await nats.connect(proxy.url)
        try:
            await filled_stream(direct.jetstream(), "SLOW", [2_000] * 300)
            js = nc.jetstream(timeout=30)
            proxy.hold("$JS.API", 1.0)
            return await read_counts(js, "SLOW", 3, timeout=20)
        finally:
            await nc.close()
            await direct.close()

    try:
        assert asyncio.run(run()) == [300] * 3
    finally:
        proxy.stop()
    assert sum(asked) <= 12, sum(asked)


def test_a_lost_request_is_asked_again_within_a_short_reads_timeout_after_a_slow_create(
        nats_server: EmbeddedNats) -> None:
    """review41 F4: the bound on an unheard request grew from the consumer create's round trip (241c0c2d: twice it
    plus a heartbeat) with no regard to the reader's own timeout, so a listing's 2 s read whose create took 1 s
    (a loaded cluster) and whose first pull requests were lost (f486febc's case) waited 2.5 s to ask again and ended
    ScanIncomplete after 0 messages. A reader's timeout caps the bound (half of it, never below ``LOST_AFTER``):
    the read gets all 200 messages (without the cap: ScanIncomplete)."""
    proxy = PublishFilter(("127.0.0.1", nats_server.port)).start()

    async def run() -> int:
        direct = await nats.connect(nats_server.url)
        nc = await nats.connect(proxy.url)
        try:
            await filled_stream(direct.jetstream(), "SHORT", [100] * 200)
            js = nc.jetstream(timeout=10)
            proxy.hold("$JS.API.CONSUMER.CREATE.SHORT", 1.0)
            proxy.drop("$JS.API.CONSUMER.MSG.NEXT.SHORT.", count=2)  # both first requests
            return (await read_counts(js, "SHORT", 1, timeout=2.0))[0]
        finally:
            await nc.close()
            await direct.close()

    try:
        assert asyncio.run(run()) == 200
        assert proxy.dropped == 2
    finally:
        proxy.stop()


async def _held_by_a_stalled_reader(url: str, n: int) -> int:
    """A headers-only read of ``n`` small messages whose reader has taken one: the messages nats-server sent it,
    once it sends no more (every request out answered, or the whole stream sent)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        await filled_stream(js, "SMALL", [20] * n)
        feed = await pull_feed.pull_feed(js, "small.>", stream="SMALL", config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, headers_only=True))
        try:
            await feed.next_msg(timeout=5)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                info = await feed.consumer_info()
                sent = info.delivered.stream_seq
                if sent == n or (sent >= 2 * pull_feed.REQUEST_MSGS and not info.num_waiting):
                    break
                await asyncio.sleep(0.05)
            return sent
        finally:
            await feed.unsubscribe()
    finally:
        await nc.close()


def test_a_read_of_small_messages_holds_a_bounded_number(nats_server: EmbeddedNats) -> None:
    """perf41: a read's requests asked for 512 KiB each and no count, so a read of small messages (a reaper's
    headers-only read of the records, ~190 B each) held ~2,800 a request, and each costs Python ~0.6 KB more than
    its bytes: a worker's read of 30,000 records grew its RSS by 5.2 MB, and kept it (issue 14's bound: 80 MB).
    Now each request asks for at most ``REQUEST_MSGS`` (256) messages, and none is asked while that many wait
    unread: a reader that took one of 3,000 has been sent 512 to 768 (without the count: all 3,000); the read of
    30,000 grows the RSS by 1.6 MB."""
    sent = asyncio.run(_held_by_a_stalled_reader(nats_server.url, 3_000))
    assert sent <= 3 * pull_feed.REQUEST_MSGS, sent


def test_a_read_makes_no_task_per_message(nats_server: EmbeddedNats) -> None:
    """perf41: the feed asks for its next request after each message it hands out, and each ask made a task (to
    wait for room) and cancelled it at once when a message was ready: ~0.3 tasks a message, ~30 % of the CPU of a
    headers-only read of 30,000 records (629 ms; now 431 ms). A unit of room free is taken at once and a ready
    message refuses without a task: a whole read of 3,000 messages (3 MB) makes a handful (without: ~1,000)."""

    async def run() -> tuple[int, int]:
        nc = await nats.connect(nats_server.url)
        made = 0

        def counting(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
            nonlocal made
            made += 1
            return asyncio.Task(coro, loop=loop)

        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, "MANY", [1_000] * 3_000)  # 3 MB: six requests' bytes
            asyncio.get_running_loop().set_task_factory(counting)
            got = (await read_counts(js, "MANY", 1, timeout=5))[0]
            asyncio.get_running_loop().set_task_factory(None)
            return got, made
        finally:
            await nc.close()

    got, made = asyncio.run(run())
    assert got == 3_000
    assert made <= 50, made


def test_a_request_no_one_listens_for_yet_is_asked_again_not_taken_for_the_consumers_end(
        nats_server: EmbeddedNats) -> None:
    """flake42: on a 3-node cluster a fresh consumer's first pull requests were answered ``503`` (no responders: its
    leader's interest not yet known to the client's server) and the feed took that for the consumer's end: the R3
    window read of test_list_window ended ScanIncomplete after 0 messages at once (4 of 25 loaded rounds). Here the
    consumer is made only after the feed's first requests were refused so: the feed asks again and reads all 50
    (without the rule: ``TimeoutError`` at once, 0 read)."""
    async def run() -> int:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, "REFUSED", [10] * 50)
            feed = pull_feed.PullFeed(js, "REFUSED", "later", wait_room=5)
            await feed.start()
            try:
                first = asyncio.ensure_future(feed.next_msg(timeout=5))
                await asyncio.sleep(0)  # its requests go out (answered 503: no consumer listens yet)
                await js.add_consumer("REFUSED", ConsumerConfig(
                    name="later", deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                    mem_storage=True, inactive_threshold=pull_feed.INACTIVE))
                read = [await first]
                while len(read) < 50:
                    read.append(await feed.next_msg(timeout=5))
                return len(read)
            finally:
                await feed.unsubscribe()
        finally:
            await nc.close()

    assert asyncio.run(run()) == 50


def test_a_read_waiting_for_its_connections_room_is_not_taken_for_a_silent_server(nats_server: EmbeddedNats) -> None:
    """flake55: 24 reads at once of a stream with big messages at load ~40 (the first test here) ended
    ScanIncomplete, "5 messages read, then 5 s without one while NATS still held more", right before a big one: each
    read asks for a big message in turn (the connection's lock for several units of room), and the time a read
    waited for that lock, behind the other reads of its own process, counted as the server's silence — NATS had not
    been asked. Here another read holds that lock for 3 × the read's 1 s timeout: the read gets both messages once it
    can ask (before: ScanIncomplete after 0)."""
    async def run() -> list[int]:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, "LOCKED", [BIG, 10])
            big = feed_room.room_of(nc)[1]
            await big.acquire()  # another read of this connection is asking for a big message
            asyncio.get_running_loop().call_later(3.0, big.release)  # (the other read's wait; not a wait for state)
            async with aclosing(read_stream(js, "LOCKED", "locked.>", timeout=1)) as msgs:
                return [len(m.data) async for m in msgs]
        finally:
            await nc.close()

    assert asyncio.run(run()) == [BIG, 10]


def test_a_lost_pull_request_beside_one_answered_does_not_end_the_read(nats_server: EmbeddedNats) -> None:
    """pullfeed60: nats-server serves the pull requests it holds in turn (``waitQueue.pop``), and a delivery does not
    say whose it is; the feed counted each as its oldest request's. With the first of a read's two requests lost
    (as in a cluster, f486febc's case), the second's 256 messages were counted as the lost one's, and the second's
    end, ``409 Batch Completed`` (its batch delivered, bytes to spare), was taken for the consumer's: the read of 600
    ended ScanIncomplete after 256, 0.1 s in, "then 5 s without one". Now it reads all 600."""
    assert _read_losing(nats_server, "BESIDE", 600, lost=1) == 600


def test_a_request_nats_server_will_never_serve_ends_the_read_at_once_naming_why(
        nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch) -> None:
    """pullfeed60: a read that ends on a status (here its consumer now takes at most 10 messages a request: ``409
    Exceeded MaxRequestBatch of 10``) said "then 5 s without one" and nothing of why. Now its ScanIncomplete names
    the status nats-server gave, and claims no wait it did not make."""
    made = scan.pull_feed

    async def narrowed(js: Any, subject: str, **kwargs: Any) -> pull_feed.PullFeed:
        feed = await made(js, subject, **kwargs)
        info = await feed.consumer_info()  # the consumer changed under the read, before its first request
        config = {**info.config.as_dict(), "max_batch": 10}  # MaxRequestBatch (not in nats-py's ConsumerConfig)
        answer = await js._nc.request(f"$JS.API.CONSUMER.CREATE.NARROW.{info.name}",
                                      json.dumps({"stream_name": "NARROW", "config": config}).encode(), timeout=10)
        assert json.loads(answer.data)["config"]["max_batch"] == 10, answer.data
        return feed

    monkeypatch.setattr(scan, "pull_feed", narrowed)

    async def run() -> str:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=10)
            await filled_stream(js, "NARROW", [100] * 50)
            with pytest.raises(scan.ScanIncomplete) as raised:
                await read_counts(js, "NARROW", 1, timeout=5)
            return str(raised.value)
        finally:
            await nc.close()

    message = asyncio.run(run())
    assert "0 messages read" in message and "409 Exceeded MaxRequestBatch of 10" in message, message
    assert "s without one" not in message, message
