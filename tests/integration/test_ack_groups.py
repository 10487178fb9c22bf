"""Publish acks without a future per message (issue 14.3/14.4), on a real nats-server: a batch's acks are one
group with one deadline (``acks.publish_many``), and a single publish's future leaves the map by its reply or by
a sweep. What a user sees: every ad of a batch that NATS does not answer gets its own "did not answer in time"
(and the ads may be stored anyway, so a retry is safe), nothing of a stall stays behind in the API's memory, and
later publishes are answered as before."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import nats
import pytest
import uvloop
from nats.js.api import StorageType

from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueUnavailable
from gamead_core.queue import acks
from gamead_core.queue.acks import Ack, publish_acked, publish_many
from gamead_core.queue.connection import translate
from tests.nats_barrier import subscriptions_placed
from tests.support import frozen, wait_for


def _unread_answers(nc: Any) -> int:
    """How many messages (``MSG``/``HMSG``: here publish acks) wait unread in ``nc``'s socket, peeked at without
    taking them (``MSG_PEEK`` on a duplicate of its descriptor: works under asyncio and uvloop alike)."""
    fd = nc._transport._io_writer.get_extra_info("socket").fileno()  # noqa: SLF001 - nats-py's socket
    with socket.socket(fileno=os.dup(fd)) as peek:
        try:
            return peek.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT).count(b"MSG ")
        except BlockingIOError:
            return 0


def _stand_still(nc: Any, loop: asyncio.AbstractEventLoop, *, until: float, answers: int) -> None:
    """The stall under test: block the event loop (``time.sleep``, no turn runs) until the loop's clock reads
    ``until`` and ``answers`` acks wait unread in the socket. nats-server, resumed, answers at its own pace: on a
    loaded machine a fixed 1.5 s stall could end before the acks came, and the test saw timeouts that were no stall's
    (the answers then came after the loop ran again). Figure (sleep42): with nats-server resumed 2 s after the
    frozen block (``frozen``'s SIGCONT delayed, as a server starved of CPU), the fixed stall failed 3 of 3 cases
    (``TimeoutError``); this wait passes 3 of 3."""
    time.sleep(max(0.0, until - loop.time()))
    wait_for(lambda: _unread_answers(nc) >= answers, timeout=30, interval=0.005,
             what=f"{answers} acks unread in the socket")


async def _connected(server: EmbeddedNats) -> tuple[Any, Any]:
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await js.add_stream(name="T", subjects=["t.>"], storage=StorageType.MEMORY)
    return nc, js


def test_a_batch_nats_does_not_answer_gets_a_timeout_per_message_at_one_deadline_and_leaves_nothing(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    server = fresh_nats()

    async def run() -> None:
        nc, js = await _connected(server)
        try:
            messages = [(f"t.{i}", b"ad %d" % i, {"Nats-Msg-Id": f"id-{i}"}) for i in range(50)]
            with frozen(server.proc.pid):
                answers = await publish_many(js, messages, timeout=0.3)
            assert all(isinstance(a, asyncio.TimeoutError) for a in answers), answers
            # as the batch route reports it: 503 queue_unavailable "did not answer in time", per ad
            assert all(isinstance(translate(a), QueueUnavailable) for a in answers)  # type: ignore[arg-type]
            assert acks.pending(js) == 0, "the group's tokens left the map at its deadline"
            # the messages were stored all the same once NATS woke up: a retry under the same ids is deduplicated
            again = await publish_many(js, messages, timeout=10)
            assert all(isinstance(a, Ack) and a.duplicate for a in again), again
            assert (await js.stream_info("T")).state.messages == 50
            fresh = await publish_many(js, [("t.x", b"new", {}), ("t.y", b"new", {})], timeout=10)
            assert [a.seq for a in fresh if isinstance(a, Ack)] == [51, 52]
            assert acks.pending(js) == 0
        finally:
            await nc.close()

    asyncio.run(run())


def test_single_publishes_that_expired_unanswered_do_not_stay_in_memory(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """1,100 publishes to a subject whose listener never answers expire; the next 1,024 answered publishes
    sweep them out of the map of waiting acks (memory bounded by what is in flight, not by past stalls)."""
    server = fresh_nats()

    async def run() -> None:
        nc, js = await _connected(server)
        quiet = await nats.connect(server.url)
        try:
            await quiet.subscribe("quiet.x")  # a listener (so no "no responders" answer) that never replies
            await subscriptions_placed(quiet)  # not flush(): its PING can pass the SUB (tests/nats_barrier.py)
            futures = [await publish_acked(js, "quiet.x", b"x", headers={"H": "1"}, timeout=0.2)
                       for _ in range(1100)]
            await asyncio.wait(futures, timeout=30)
            assert all(isinstance(f.exception(), asyncio.TimeoutError) for f in futures)
            assert acks.pending(js) >= 1100  # expired, not answered: nothing took them out yet
            for start in range(0, 1100, 100):
                sent = [await publish_acked(js, f"t.{start + i}", b"x", headers={"H": "1"}, timeout=10)
                        for i in range(100)]
                answers = await asyncio.gather(*sent)
                assert all(isinstance(a, Ack) for a in answers)
            assert acks.pending(js) == 0
        finally:
            await quiet.close()
            await nc.close()

    asyncio.run(run())


def test_a_cancelled_batch_leaves_no_waiting_ack_behind(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The client of a batch goes away mid-wait (the request task is cancelled): the late acks find nothing."""
    server = fresh_nats()

    async def run() -> None:
        nc, js = await _connected(server)
        try:
            messages = [(f"t.{i}", b"x", {}) for i in range(20)]
            with frozen(server.proc.pid):
                task = asyncio.ensure_future(publish_many(js, messages, timeout=30))
                for _ in range(1000):  # at most ~10 s: until the batch is sent and waits for its acks
                    if acks.pending(js) == 20:
                        break
                    await asyncio.sleep(0.01)
                assert acks.pending(js) == 20
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert acks.pending(js) == 0
            assert [isinstance(a, Ack) for a in await publish_many(js, messages[:2], timeout=10)] == [True, True]
        finally:
            await nc.close()

    asyncio.run(run())


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_acks_that_came_while_the_loop_stood_still_are_answers_not_timeouts(
    fresh_nats: Callable[[], EmbeddedNats], loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """An API whose event loop stood still past the publish deadline (SIGSTOP, starved of CPU, blocked) while
    JetStream answered in time: the acks wait unread in its socket, and the loop runs its due timers before it
    reads the socket. They failed as "did not answer in time", so the client got 503 "may still be queued" for an
    ad that was stored, and a resend without a key made a second ad (note 28's leftover). Now the late deadline
    gets a grace to read them: a single publish and a batch are answered stored, as the server answered."""
    server = fresh_nats()

    async def run() -> None:
        nc, js = await _connected(server)
        try:
            with frozen(server.proc.pid):  # sent, not yet answered: the answers come while the loop stands still
                single = await publish_acked(js, "t.single", b"x", headers={"Nats-Msg-Id": "s"}, timeout=0.5)
                batch = asyncio.ensure_future(publish_many(js, [(f"t.{i}", b"x", {}) for i in range(5)], timeout=0.5))
                for _ in range(1000):  # until the batch is sent and waits for its acks (~10 s at most)
                    if acks.pending(js) == 6:
                        break
                    await asyncio.sleep(0.01)
                assert acks.pending(js) == 6
                sent_at = asyncio.get_running_loop().time()
            # the loop stands still past both deadlines (and a second of grace); nats-server answers meanwhile
            _stand_still(nc, asyncio.get_running_loop(), until=sent_at + 1.5, answers=6)
            assert isinstance(await single, Ack)
            assert [isinstance(a, Ack) for a in await batch] == [True] * 5
            # a server that does not answer still times out, at its deadline and the grace
            with frozen(server.proc.pid):
                late = await publish_acked(js, "t.late", b"x", headers={}, timeout=0.3)
                answers = await publish_many(js, [("t.x", b"x", {})], timeout=0.3)
                await asyncio.wait([late], timeout=10)
            assert isinstance(late.exception(), asyncio.TimeoutError)
            assert isinstance(answers[0], asyncio.TimeoutError)
        finally:
            await nc.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())


def test_an_ack_that_came_just_before_a_short_stall_ended_is_an_answer(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review29 F5: the stall was inferred from a timer running over 0.1 s late, so a loop that stood still until
    just past the deadline failed the ack that had come in time. Every deadline now gets its grace."""
    server = fresh_nats()

    async def run() -> None:
        nc, js = await _connected(server)
        loop = asyncio.get_running_loop()
        try:
            with frozen(server.proc.pid):
                sent_at = loop.time()
                single = await publish_acked(js, "t.short", b"x", headers={}, timeout=0.5)
                for _ in range(1000):  # until it is written (the flusher's turn), ~10 s at most
                    if not nc._pending_data_size:  # noqa: SLF001 - nats-py's unsent bytes
                        break
                    await asyncio.sleep(0.01)
            _stand_still(nc, loop, until=sent_at + 0.53, answers=1)  # until just past the deadline, its ack in
            assert isinstance(await single, Ack)
        finally:
            await nc.close()

    asyncio.run(run())
