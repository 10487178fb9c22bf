"""Quiet and resume one worker (Sidekiq's *quiet*, Celery's ``cancel_consumer``): ``gamead workers quiet ID``.

A quiet worker takes no new ad: its pull loop hands its prefetch buffer back (``nak``, uncharged), drops its long
polls (:meth:`~gamead_core.queue.pull.AgingPuller.stop`: unsubscribed, so none stays parked at the server, and
what they had brought is handed back at once) and pulls nothing; the ads it runs finish and settle as usual. It
keeps heartbeating, with ``quiet`` true in its registry entry (``gamead workers``, ``top``, ``/metrics``
``gamead_workers{state="quiet"}``), and the autoscaler counts no capacity for it. ``resume`` subscribes the long
polls again (:meth:`~gamead_core.queue.long_poll.LongPolls.start`: their quiet spell forgotten), so the next pull
looks at the queue heads and an urgent ad is taken at once.

How it is told: a core NATS request on its own control subject (:func:`control_subject`), answered by the worker
itself once its pulls stopped (or started again). The state is the worker's, in its memory: nats-py subscribes
again after a reconnect, an API node keeps nothing, so a NATS restart or an API restart leaves it as it was; the
next heartbeat writes it into the new registry. A worker that started under an id whose previous process died
(``gamead up``'s restart, kill -9: its entry is taken over, :func:`gamead_core.registry.claim`) takes that
entry's ``quiet`` (:func:`restored`); one that stopped cleanly deleted its entry, and a new start takes ads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gamead_core import names
from gamead_core.errors import NotFound
from gamead_core.registry.nodes import node_key
from gamead_core.registry.wire import NodeInfo

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger

Verb = Literal["quiet", "resume"]
VERBS: tuple[Verb, ...] = ("quiet", "resume")
#: Longest wait (s) of a control request's answer for the pull loop to have applied the change
APPLY_WAIT = 2.0


class WorkerNotLive(NotFound):
    """A control request named a worker no live process answers for (404 ``worker_not_live``, CLI exit 4): not
    running, an API node's id, or none answered in time (frozen, its NATS link down). Here, not in
    :mod:`gamead_core.errors` (at its size bound), as :mod:`gamead_core.full_stores`' errors."""

    code = "worker_not_live"

    @classmethod
    def named(cls, worker_id: str, why: str) -> WorkerNotLive:
        return cls(f"worker {worker_id} is not live: {why} (gamead workers lists the live ones)",
                   details={"workerId": worker_id})

    @classmethod
    def silent(cls, worker_id: str, verb: str, wait: float) -> WorkerNotLive:
        """No answer in time: a frozen worker still reads the request when it wakes, and carries it out then
        (probe49: SIGSTOP, ``quiet --all`` said "not live any more", SIGCONT: it went quiet)."""
        return cls(f"worker {worker_id} did not answer within {wait:g} s (frozen, or its NATS link is down): not "
                   f"done now, but it may still {'go quiet' if verb == 'quiet' else verb} when it wakes; gamead "
                   "workers shows its state",
                   details={"workerId": worker_id, "answered": False})


def control_subject(worker_id: str) -> str:
    """The control subject of ``worker_id`` (checked by the caller: :func:`gamead_core.ids.is_worker_id`): one
    token, its registry key (:func:`gamead_core.registry.node_key`). Pure."""
    return names.worker_control_subject(node_key(worker_id))


def read_verb(data: bytes) -> Verb | None:
    """The verb of a control request (``{"verb": "quiet"}``), None for anything else. Pure."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    verb = doc.get("verb") if isinstance(doc, dict) else None
    return verb if verb in VERBS else None


def decide(verb: Verb, quiet: bool) -> tuple[bool, bool]:
    """``(quiet after, changed)`` for ``verb`` asked of a worker that is ``quiet`` now: asked twice, the second
    changes nothing (and says so). Pure."""
    after = verb == "quiet"
    return after, after != quiet


def restored(previous: NodeInfo | None) -> bool:
    """Whether a start takes over quiet: the entry of its id's dead predecessor (:class:`~gamead_core.registry.
    claim.Claimed` ``previous``) said ``quiet``. Pure."""
    return previous is not None and previous.quiet


class _Stats(Protocol):
    in_flight: int


class _Puller(Protocol):
    async def stop(self) -> None: ...
    async def start(self) -> None: ...


class QuietSwitch:
    """One worker's quiet state and its control subscription. ``on``: quiet now. The pull loop calls
    :meth:`hold` while ``on``; ``wake`` (set by the loop) ends its waits when the state changes."""

    def __init__(self, worker_id: str, stats: _Stats) -> None:
        self.id = worker_id
        self.on = False
        self._stats = stats
        self._changed = asyncio.Event()  #: the state changed (the loop's hold waits for it)
        self._applied = asyncio.Event()  #: the loop applied the last change (its pulls stopped, or started)
        self._applied.set()
        self._sub: Subscription | None = None
        self.wake: Callable[[], None] = lambda: None
        self.stopped = False  #: the pull loop ended (the worker drains): it takes no ad, resumed or not (probe49 F7)
        self.said: Callable[[], Awaitable[None]] | None = None  #: writes the registry entry now (the new state)

    def waking(self, wake: Callable[[], None]) -> Callable[[object], None]:
        """Take ``wake`` (ends the pull loop's waits) for a change of state; returns it as a done callback (the
        loop's stop ends them too)."""
        self.wake = wake

        def ended(_: object) -> None:
            self.stopped = True
            wake()
        return ended

    def restore(self, previous: NodeInfo | None) -> None:
        """Start quiet when the dead predecessor of this id was (:func:`restored`)."""
        if restored(previous):
            self.on = True
            self._applied.clear()
            log.warning("worker %s starts quiet: its previous process (pid %s) was quiet when it died; "
                        "gamead workers resume %s takes ads again", self.id, getattr(previous, "pid", "?"),
                        self.id, extra={"worker_id": self.id})

    async def listen(self, nc: NATS, claimed: Any = None, *, said: Callable[[], Awaitable[None]] | None = None) -> None:
        """Subscribe the control subject (nats-py subscribes it again after every reconnect; the connection's close
        ends it); start quiet when the id's dead predecessor was (``claimed``: :class:`~gamead_core.registry.claim.
        Claimed`, :meth:`restore`). ``said``: writes the worker's registry entry now, once a change is applied."""
        self.said = said
        self.restore(getattr(claimed, "previous", None))
        self._sub = await nc.subscribe(control_subject(self.id), cb=self._request)
        if self.on and said is not None:  # the claim wrote its entry not quiet: say it now, not at the next beat
            await self._say()

    def document(self, changed: bool | None = None) -> dict[str, Any]:
        """The answer to a control request: the worker's id, whether it is quiet, the ads it runs."""
        doc: dict[str, Any] = {"workerId": self.id, "quiet": self.on, "inFlight": self._stats.in_flight}
        if changed is not None:
            doc["changed"] = changed
        if self.stopped:  # quiet or resumed, it takes no ad: it is stopping
            doc["draining"] = True
        return doc

    async def _request(self, msg: Msg) -> None:
        verb = read_verb(msg.data)
        if verb is None:
            await _answer(msg, {"error": "not a control request: {\"verb\": \"quiet\" | \"resume\"}"})
            return
        self.on, changed = decide(verb, self.on)
        if changed:
            log.info("worker %s: %s asked", self.id, verb, extra={"worker_id": self.id})
            self._applied.clear()
            self._changed.set()
            self.wake()
        try:
            if not self.stopped:  # no pull loop left to apply it
                await asyncio.wait_for(self._applied.wait(), APPLY_WAIT)
        except asyncio.TimeoutError:
            pass  # the loop is busy (a pull under way): applied at its next step; the answer says the state asked
        await _answer(msg, self.document(changed))

    async def hold(self, puller: _Puller, stopping: asyncio.Future[Any],
                   hand_back: Callable[..., Awaitable[None]]) -> bool:
        """The pull loop's step while quiet: the buffer handed back, the long polls dropped, then nothing until
        resumed or stopped; resumed, the long polls are back (their spell forgotten) before it returns. True: the
        loop looks again (at its stop first)."""
        await hand_back(why="the worker is quiet (gamead workers quiet)")
        await puller.stop()
        log.info("worker %s is quiet: it takes no new ad (%d running finish)", self.id, self._stats.in_flight,
                 extra={"worker_id": self.id})
        await self._say(stopping)
        while self.on and not stopping.done():
            self._changed.clear()
            self._applied.set()
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({stopping, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
        if stopping.done():
            self._applied.set()
            return True
        await puller.start()
        log.info("worker %s resumed: it takes ads again", self.id, extra={"worker_id": self.id})
        await self._say(stopping)
        self._applied.set()
        return True

    async def _say(self, stopping: asyncio.Future[Any] | None = None) -> None:
        """The new state in the registry now, not at the next beat (but once stopping: the beats say draining)."""
        if self.said is not None and not (stopping is not None and stopping.done()):
            try:
                await self.said()
            except Exception as exc:  # noqa: BLE001 - the next heartbeat says it anyway
                log.debug("could not write the quiet state now: %r", exc)


async def _answer(msg: Msg, doc: dict[str, Any]) -> None:
    if msg.reply:
        try:
            await msg.respond(orjson.dumps(doc))
        except Exception as exc:  # noqa: BLE001 - the asker timed out or NATS went away: it asks again
            log.debug("control answer not sent: %r", exc)


__all__ = ["APPLY_WAIT", "VERBS", "QuietSwitch", "Verb", "WorkerNotLive", "control_subject", "decide", "read_verb",
           "restored"]
