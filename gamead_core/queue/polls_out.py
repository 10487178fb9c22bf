"""Which long poll an answer ends: the long polls a puller has out at nats-server, each (level, partition)'s by its own
reply subject, oldest first (pure bookkeeping of :class:`~gamead_core.queue.long_poll.LongPolls`).

A long poll is counted live from just before it is sent until ``expires`` after that (client clock), so its end at
nats-server, which counts from when it took the request, comes a little later: a round trip, more on a loaded
machine or a slow link. The puller puts a new long poll on a level as soon as the old one's time is up by its own
count, so for a moment nats-server may hold both. Before (poll54), every long poll of a level had the same reply
subject and any answer there ended "the" long poll of the level: the old one's late 408 (expired), or an ad the
server gave the old one (it serves a consumer's waiting requests oldest first), was taken for the new one's end. The
worker then counted that level unwatched while its long poll still waited at the server, and put another one beside
it at its next step: one more request waiting than it knew of, every cycle (an ad more than its room could come; a
stop or a suspect ad's wait took the level for quiet while a long poll could still bring an ad).

Now each long poll has its own reply subject (``<bell>.<n>``, the bell subscribed as ``<bell>.*``) and is kept
here until its answer: a status (408, 409…) is sent to the reply subject of the request it ends, so it ends only
that one; a delivery carries its message's own subject, not the request's, and ends the key's oldest long poll out
(``batch: 1``; nats-server serves the oldest live request first, and a request it expired is answered 408 before
a later delivery, on the same connection). A long poll never answered within the puller's margin past its expiry
(``POLL_MARGIN``) went with its server (or its answer was lost): it is dropped when its key is placed again, so
nothing here grows without bound. O(1) per answer: a dict look-up and a delete. The race on a real nats-server,
made certain by a proxy: tests/integration/test_long_poll_late_answer.py (``num_waiting`` 2 for one idle worker's
level before, 1 now).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("gamead_core.queue.long_poll")


class PollsOut(Generic[K]):
    """The long polls out at the server by key (a level consumer), each as its reply subject and its expiry
    (``time.monotonic()`` s by the client's count), oldest first. No I/O: the caller sends and subscribes."""

    __slots__ = ("_out",)

    def __init__(self) -> None:
        self._out: dict[K, dict[str, float]] = {}

    def sent(self, key: K, reply: str, expiry: float, *, gone_before: float) -> None:
        """A long poll of ``key`` with reply subject ``reply`` is (about to be) sent, live until ``expiry``; the
        key's long polls still unanswered whose expiry is earlier than ``gone_before`` are dropped as gone."""
        polls = self._out.setdefault(key, {})
        for old in [r for r, at in polls.items() if at < gone_before]:
            del polls[old]
        polls[reply] = expiry

    def ended(self, key: K, reply: str | None) -> None:
        """An answer that ends a long poll of ``key``: a status sent to ``reply`` ends that one (none when it is not
        out, e.g. dropped as gone); a delivery (``reply`` None) ends the oldest one out. Also: one not sent after
        all."""
        polls = self._out.get(key)
        if not polls:
            return
        if reply is None:
            del polls[next(iter(polls))]
        else:
            polls.pop(reply, None)

    def expiry(self, key: K) -> float:
        """The expiry of ``key``'s newest long poll out (monotonic s; 0.0 when none is): the key is watched until
        then."""
        polls = self._out.get(key)
        return next(reversed(polls.values())) if polls else 0.0

    def watched(self, now: float) -> int:
        """How many keys have a long poll out whose expiry is later than ``now``."""
        return sum(1 for key in self._out if self.expiry(key) > now)

    def count(self, key: K) -> int:
        """How many long polls of ``key`` are out (expired by the client's count but not answered included): those
        nats-server may hold for it (consumer info ``num_waiting``)."""
        return len(self._out.get(key, ()))

    def latest(self) -> float:
        """The latest expiry of any long poll out (monotonic s; 0.0 when none is)."""
        return max((at for polls in self._out.values() for at in polls.values()), default=0.0)

    def clear(self) -> None:
        """None is out any more (lost with the server, or unsubscribed)."""
        self._out.clear()

    def wait_words(self, now: float, until: float, margin: float) -> str | None:
        """What a stop waits for before it lets its long polls go (:meth:`LongPolls._outlive
        <gamead_core.queue.long_poll.LongPolls._outlive>`), or None when none is out or nothing is left of ``until``:
        ``stopping: waiting up to 6.0s for 5 long polls at NATS to end …`` (each one's expiry plus ``margin`` s, at
        most until ``until``; monotonic s). An idle joined ``gamead worker`` took up to ``queue.idle_wait`` to stop on
        SIGTERM with no word of why (attack57b). Pure."""
        out, most = sum(len(polls) for polls in self._out.values()), min(self.latest() + margin, until) - now
        if not out or most <= 0:
            return None
        return (f"stopping: waiting up to {most:.1f}s for {out} long poll{'s' if out != 1 else ''} at NATS to end "
                "(queue.idle_wait): NATS cannot cancel one, and an ad one brings meanwhile is handed back at once, "
                "not left to wait the consumer's ack_wait")

    def say_wait(self, now: float, until: float, margin: float, *, connected: bool) -> None:
        """Log :meth:`wait_words` (INFO) when ``connected`` (else nothing is waited for)."""
        if connected and (words := self.wait_words(now, until, margin)) is not None:
            log.info("%s", words, extra={"event": "stop_waits_for_long_polls"})

    def __bool__(self) -> bool:
        """True while any long poll is out."""
        return any(self._out.values())
