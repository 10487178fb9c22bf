"""JetStream publish acks on one reply subscription per connection, with one timer for all their deadlines.

Why not nats-py's own calls:

* ``js.publish(timeout=…)`` awaits its ack with ``asyncio.wait_for``: a timer armed and cancelled, a second
  future and two callbacks per message (~10-25 µs of a ~180 µs ``POST /ads`` in-process; issue 14.4);
* ``js.publish_async`` (one reply subscription, no timer) loses every error ack: its reply handler calls
  ``APIError.from_error``, which *raises* for the codes that matter (503 "maximum messages exceeded", 500,
  404, 400), inside the subscription's callback, so the future is never resolved and the publisher waits out
  its whole timeout for a ``QueueUnavailable`` "did not answer in time" where ``QueueFull`` was answered at once.

:func:`publish_acked` publishes with a reply subject of its own connection-wide wildcard subscription
(``_INBOX.<nuid>.*``, made on first use; nats-py re-subscribes it after a reconnect), resolves the future with
an :class:`Ack` (the fields of nats-py's ``PubAck`` gamead reads; ``PubAck.from_response`` walks every
dataclass field per message) or the error nats-py would have raised (``APIError`` subclasses,
``NoStreamResponseError`` for a no-responders status), and keeps the deadline with
:func:`gamead_core.queue.deadlines.expire_after`. A reply takes its future out of the map; futures that end
without one (expired, cancelled) are swept out at every 1,024th publish and whenever the map has doubled since
the last sweep (no done-callback per future: each costs one when it ends). Memory: the publishes of one timeout.

A publish answered "no responders" (nothing stored; a cluster re-forming answers so for a moment, attack40b F3) is
sent again, the same message under a new token, while its deadline leaves room (:mod:`gamead_core.queue.resend`);
its waiter sees only the last answer. Both calls do so; :func:`on_no_responders` is told of the first.

:func:`publish_many` (the pipelined writes of a batch) has no future at all per message: the replies fill the
slots of one group, whose one waiter wakes when the last arrives or at the group's one deadline (issue 14.3:
``asyncio.wait`` over a future per message added a callback per message, twice). It writes :data:`SLICE`
messages per turn of the event loop (``asyncio.sleep(0)`` between slices): the other requests of the process (an
urgent ``POST /ads``) get their writes in between instead of waiting behind every message of every batch.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError

from gamead_core.queue import hpub
from gamead_core.queue.ack_answer import Ack, parse_ack
from gamead_core.queue.deadlines import expire_after, respite
from gamead_core.queue.ack_waits import Group as _Group, One as _One
from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.resend import resend_at

__all__ = ["Ack", "on_no_responders", "parse_ack", "pending", "publish_acked", "publish_many", "resends"]

E = TypeVar("E")


class _Acks:
    """The reply subscription of one connection and what waits on it, by token: the future of one publish
    (:func:`publish_acked`), or a slot of a group (:func:`publish_many`)."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._prefix = ""
        self._cut = 0
        self._next = 0
        self._waiting: dict[str, _One | tuple[_Group, int]] = {}
        self._resends: set[asyncio.Task[None]] = set()  #: resends of "no responders" under way (the module doc)
        self.no_responders: Callable[[], None] | None = None  #: told of a write's first one (on_no_responders)
        self.resends = 0  #: "no responders" answers sent again so far (:func:`resends`)
        #: above this many entries the map is swept of futures that ended without an answer (expired or
        #: cancelled: a reply pops its own entry); doubled after each sweep, so sweeping is amortised O(1)
        self._sweep_at = _SWEEP_FLOOR
        self._lock = asyncio.Lock()
        #: its event loop, kept: ``asyncio.get_running_loop()`` is a getpid call on CPython 3.11 (two a POST /ads)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _subscribe(self) -> None:
        async with self._lock:
            if self._prefix:
                return
            prefix = self._nc.new_inbox() + "."
            # handled in nats-py's read loop, no task hop per ack (gamead_core.queue.inline_sub)
            await subscribe_inline(self._nc, prefix + "*", self._on_reply)
            self._loop = asyncio.get_running_loop()
            self._cut = len(prefix)
            self._prefix = prefix

    def _on_reply(self, msg: Msg) -> None:
        entry = self._waiting.pop(msg.subject[self._cut:], None)
        if entry is None:
            return  # expired (its group gave up), or swept
        try:
            answer: Ack | BaseException = parse_ack(msg)
        except Exception as exc:  # noqa: BLE001 - the publisher's error, raised where it awaits
            answer = exc
        if type(answer) is NoStreamResponseError and self._again(entry):
            return  # nothing stored: sent again (the module doc)
        self._answer(entry, answer)

    @staticmethod
    def _answer(entry: _One | tuple[_Group, int], answer: Ack | BaseException) -> None:
        if type(entry) is tuple:
            entry[0].fill(entry[1], answer)
        elif not (future := entry.future).done():  # type: ignore[union-attr]  # else expired, or its publisher left
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _again(self, entry: _One | tuple[_Group, int]) -> bool:
        """Send ``entry``'s message again later if its deadline leaves room (:func:`resend_at`); False if not."""
        loop = self._loop
        assert loop is not None  # a reply came: subscribed
        if type(entry) is tuple:
            group, index = entry
            if group.waiter.done():
                return False
            tries, sent = (group.again or {}).get(index) or (0, group.first_sent(index))
            deadline = group.deadline
        else:
            if entry.future.done():  # type: ignore[union-attr]
                return False
            tries, sent, deadline = entry.tries, entry.sent, entry.deadline  # type: ignore[union-attr]
        if tries == 0 and self.no_responders is not None:
            self.no_responders()
        when = resend_at(tries, loop.time(), sent, deadline)
        if when is None:
            return False
        loop.call_at(when, self._start_resend, entry)
        self.resends += 1
        return True

    def _start_resend(self, entry: _One | tuple[_Group, int]) -> None:
        task = asyncio.ensure_future(self._resend(entry))
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    async def _resend(self, entry: _One | tuple[_Group, int]) -> None:
        """Send ``entry``'s message again under a new token; a send that fails is its answer."""
        loop = self._loop
        assert loop is not None
        if type(entry) is tuple:
            group, index = entry
            message = group.messages[index]
            if group.waiter.done() or isinstance(message, BaseException):
                return
            if group.again is None:
                group.again = {}
            group.again[index] = (group.again.get(index, (0, 0.0))[0] + 1, loop.time())
        else:
            if entry.future.done():  # type: ignore[union-attr]  # expired meanwhile
                return
            message = entry.message  # type: ignore[union-attr]
            entry.tries += 1  # type: ignore[union-attr]
            entry.sent = loop.time()  # type: ignore[union-attr]
        token = self._token()
        self._waiting[token] = entry
        if type(entry) is tuple:
            entry[0].tokens.append(token)
        subject, payload, headers = message
        try:
            await hpub.send(self._nc, subject, payload, self._prefix + token, headers, loop)
        except Exception as exc:  # noqa: BLE001 - nats-py's or the guard's refusal: the publisher's answer
            self._waiting.pop(token, None)
            self._answer(entry, exc)

    def _token(self) -> str:
        self._next += 1
        return str(self._next)

    def _sweep(self) -> None:
        """Drop the futures that ended without an answer (expired, cancelled): memory stays bounded by the
        publishes in flight within one timeout."""
        waiting = self._waiting
        for token in [t for t, e in waiting.items() if type(e) is not tuple and e.future.done()]:  # type: ignore
            del waiting[token]
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(waiting))

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str], timeout: float,
                      lines: str | None = None) -> asyncio.Future[Ack]:
        if not self._prefix:
            await self._subscribe()
        token = self._token()
        loop = self._loop
        future: asyncio.Future[Ack] = loop.create_future()  # type: ignore[union-attr]  # set by _subscribe
        waiting = self._waiting
        now = loop.time()  # type: ignore[union-attr]
        waiting[token] = _One(future, (subject, payload, headers), now + timeout, now)
        if len(waiting) > self._sweep_at or not self._next & _SWEEP_EVERY_MASK:
            self._sweep()
        try:
            await hpub.send(self._nc, subject, payload, self._prefix + token, headers, self._loop,  # nc.publish's bytes
                            lines)
        except BaseException:
            waiting.pop(token, None)
            future.cancel()
            raise
        expire_after(future, timeout)
        return future

    async def publish_many(self, messages: Sequence[tuple[str, bytes, dict[str, str]] | BaseException],
                           timeout: float) -> list[Ack | BaseException]:
        if not self._prefix:
            await self._subscribe()
        loop = asyncio.get_running_loop()
        results: list[Ack | BaseException | None] = [None] * len(messages)
        now = loop.time()  # 1: the loop below, so no early wake while it sends
        group = _Group(results, 1, loop.create_future(), messages, now, now + timeout, SLICE)
        waiting, prefix = self._waiting, self._prefix
        nc, send = self._nc, hpub.send  # nc.publish's bytes, put in its buffer directly (hpub; session 34)
        tokens, slices = group.tokens, group.slices
        try:
            for index, message in enumerate(messages):
                if not index % SLICE:
                    slices.append(loop.time())  # its round trips are measured from here (Group.first_sent)
                if isinstance(message, BaseException):
                    results[index] = message
                    continue
                subject, payload, headers = message
                token = self._token()
                waiting[token] = (group, index)
                tokens.append(token)
                group.left += 1
                try:
                    await send(nc, subject, payload, prefix + token, headers, loop)
                except (nats.errors.Error, asyncio.TimeoutError) as exc:
                    del waiting[token]
                    group.left -= 1
                    results[index] = exc
                if index % SLICE == SLICE - 1:
                    await asyncio.sleep(0)  # a turn of the loop for the other requests (the module doc)
            group.left -= 1
            if group.left > 0:
                timer = loop.call_later(timeout, _give_up, group.waiter, loop)
                try:
                    await group.waiter
                finally:
                    timer.cancel()
        finally:
            if not group.waiter.done():  # cancelled: no resend is made after this
                group.waiter.cancel()
            for token in tokens:  # unanswered: the reply, should it come, finds nothing
                waiting.pop(token, None)
        return [asyncio.TimeoutError() if r is None else r for r in results]


#: messages :func:`publish_many` writes between two turns of the event loop: a batch of 500 ads is written a slice
#: at a time, so a ``POST /ads`` meanwhile waits for a slice of each batch in flight, not for all of it (attack26
#: F8: an urgent ad's POST waited p95 101-376 ms behind ``gamead submit``'s batches); ~1 µs a message
SLICE = 25

#: the map of waiting acks is swept when it passes this size (doubled after each sweep) …
_SWEEP_FLOOR = 1024
#: … and at every 1,024th publish (the tokens that are multiples of 1,024), so futures that ended without an
#: answer (expired while NATS was away) do not stay in a map that never grows again
_SWEEP_EVERY_MASK = 1023


def _give_up(waiter: asyncio.Future[None], loop: asyncio.AbstractEventLoop | None = None) -> None:
    """End a group's wait at its deadline, after a grace to read the acks that came while the loop stood still
    (:func:`gamead_core.queue.deadlines.respite`; the second call, without ``loop``, ends it)."""
    if waiter.done():
        return
    if loop is None:
        waiter.set_result(None)
    else:
        loop.call_at(respite(loop), _give_up, waiter)


_ACKS: weakref.WeakKeyDictionary[NATS, _Acks] = weakref.WeakKeyDictionary()
#: the last connection looked up and its acks (weakly: one connection per process skips the dictionary's lookup)
_last: tuple[weakref.ref[NATS], _Acks] | None = None


def _acks_of(js: JetStreamContext) -> _Acks:
    global _last  # noqa: PLW0603
    nc: NATS = js._nc  # noqa: SLF001 - nats-py keeps the connection of a JetStream context here (all 2.x)
    last = _last
    if last is not None and last[0]() is nc:
        return last[1]
    acks = _ACKS.get(nc)
    if acks is None:
        acks = _ACKS[nc] = _Acks(nc)
    _last = (weakref.ref(nc), acks)
    return acks


async def publish_acked(js: JetStreamContext, subject: str, payload: bytes, *, headers: dict[str, str],
                        timeout: float, lines: str | None = None) -> asyncio.Future[Ack]:
    """Publish to a JetStream subject and return the future of its ack (``timeout`` seconds from now, then
    ``asyncio.TimeoutError``). Raises nats-py's errors if the publish itself fails (connection closed,
    reconnect buffer full …); the future carries the ack's errors (see :func:`parse_ack`). Call it inside
    ``nats_boundary()`` and await the future there too. ``lines``: ``headers`` as :func:`hpub.plain_lines
    <gamead_core.queue.hpub.plain_lines>` writes them, if the caller has them (:func:`hpub.send`)."""
    return await _acks_of(js).publish(subject, payload, headers, timeout, lines)


async def publish_many(js: JetStreamContext, messages: Sequence[tuple[str, bytes, dict[str, str]] | E],
                       *, timeout: float) -> list[Ack | BaseException | E]:
    """Publish ``messages`` (each ``(subject, payload, headers)``, or an error already met for that message,
    kept as it is) back to back, then wait for their acks together: at most ``timeout`` seconds for all of
    them, with one timer and one waiter for the whole group (no future, callback or deadline per message).
    One answer per message, in order: its :class:`Ack`; the error of its error ack (see :func:`parse_ack`);
    nats-py's error if sending it failed (connection closed, reconnect buffer full …);
    ``asyncio.TimeoutError`` if its ack did not come in time (the message may be stored). Never raises for
    one message (a cancelled caller gets ``CancelledError``: the late replies then find nothing). Yields to the
    event loop after every :data:`SLICE` messages, so other tasks' writes interleave with a long batch."""
    return await _acks_of(js).publish_many(messages, timeout)  # type: ignore[arg-type, return-value]


def on_no_responders(js: JetStreamContext, callback: Callable[[], None]) -> None:
    """Call ``callback()`` (no I/O: it runs in nats-py's read loop) at each write's first "no responders" on ``js``'s
    connection (attack41c F5: on one server a deleted stream was repaired only at a write's deadline, 2 s on)."""
    _acks_of(js).no_responders = callback


def resends(js: JetStreamContext) -> int:
    """How many publishes on ``js``'s connection were answered "no responders" and sent again (each resend counted
    when its answer came and the resend was set): a count that only grows, so a watcher (a test waiting for a
    write's first such answer) cannot miss one between two looks (left44)."""
    acks = _ACKS.get(js._nc)  # noqa: SLF001
    return acks.resends if acks is not None else 0


def pending(js: JetStreamContext) -> int:
    """Acks awaited on ``js``'s connection (tests, read-outs): unanswered publishes and unswept ended futures."""
    acks = _ACKS.get(js._nc)  # noqa: SLF001
    return len(acks._waiting) if acks is not None else 0  # noqa: SLF001
