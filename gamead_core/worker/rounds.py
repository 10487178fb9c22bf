"""Settle rounds: the outcome writes of ads whose analyses finish while no round is being acknowledged, written
and acknowledged together (issue 14.2: one wake-up per round instead of a task, a shield and a wake-up per ad).

:meth:`SettleRounds.complete` queues one completed record (its bytes, built by hand:
:mod:`gamead_core.worker.completed_json`; its compare-and-set over the revision the attempt read) and returns a
future of its result. One round is in flight at a time, run by one task of its own: the first record queued while
none runs starts it, on the next turn; every record queued by then is published back to back
(:meth:`~gamead_core.store.ads.AdStore.update_many`, each a compare-and-set), their acks are awaited together
on the connection's one reply subscription, then every message whose write was acknowledged is acknowledged
(``ack``), all in the same turn, so nats-py sends them in one write. Each future then gets its write's result:
the new revision, or the error it met (:class:`~gamead_core.errors.Conflict`: the record changed since it was
read; a storage error). A write that did not succeed leaves its message unacknowledged, for its handler to
decide (:meth:`~gamead_core.worker.settle.Settler.complete`: read again and finish unless final, or retry
after the storage back-off); the other writes of its round are settled regardless.

Records queued while a round awaits its acks form the next round, published by the same task in the turn the
acks arrive, right after that round's message acks (issue 14, session 14): the acks of one round and the writes
of the next leave in one socket write, and a round holds every ad finished meanwhile, not one start step's.
At a backlog that halved the worker's socket writes per ad (each wakes nats-server, which on a busy machine
takes the worker's core); an outcome waits at most one round's acks (a KV round trip) longer to be sent.

The guarantees stay those of one ad at a time: one awaited compare-and-set per ad, ``ack`` only after its
write was acknowledged, and the round task is a task of the worker's shield
(:class:`~gamead_core.worker.shield.Shield`), so a shutdown that cancels a handler waiting for its round does
not cut the round in half: the write and the ``ack`` still happen, and the drain waits for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from gamead_core.errors import GameadError
from gamead_core.queue.hpub import ack_all
from gamead_core.store.ads import AdStore

log = logging.getLogger(__name__)

#: A round's result for one ad: its new revision (written and acknowledged), or the error its write met.
Result = int | GameadError


class SettleRounds:
    """The completion rounds of one worker. ``track``: the worker's shield (``Shield.track``), so the drain
    waits for a round in flight. ``rounds`` and ``written`` count the rounds run and the writes they made."""

    def __init__(self, store: AdStore, track: Callable[[asyncio.Future[Any], Callable[[], list[str]]], None] | None
                 = None) -> None:
        self._store = store
        self._track = track
        self._queued: list[tuple[Msg, tuple[str, bytes, int], asyncio.Future[Result]]] = []
        self._running = False  #: a round task runs (it takes what is queued when its round ends)
        self._sending: list[str] = []  #: the ads of the round under way (named if a stop leaves it running)
        self.rounds = 0
        self.written = 0

    def complete(self, msg: Msg, ad_id: str, done: bytes, revision: int) -> asyncio.Future[Result]:
        """Queue the write of ``ad_id``'s completed record ``done`` (its encoded bytes) over ``revision`` and the
        ``ack`` of ``msg`` after it; the future gets the new revision once both are sent, or the error of the
        write (then ``msg`` is not acknowledged). Call it from the event loop; with no round running a round starts
        on the next turn with everything queued by then, else the running one's next round takes it."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queued.append((msg, (ad_id, done, revision), future))
        if not self._running:
            self._start()
        return future

    def _start(self) -> None:
        self._running = True
        task = asyncio.ensure_future(self._rounds())
        if self._track is not None:
            self._track(task, self.ads)

    async def _rounds(self) -> None:
        """Rounds, one after another, while records are queued; a round that raised (a cancelled loop) leaves
        what was queued meanwhile to a new task."""
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                await self._round(batch)
        finally:
            self._running = False
            if self._queued:  # only after a round raised: the loop above takes everything otherwise
                self._start()

    def ads(self) -> list[str]:
        """The ads the round task writes: the round's under way and those queued for the next."""
        return [*self._sending, *(ad_id for _, (ad_id, _, _), _ in self._queued)]

    async def _round(self, batch: list[tuple[Msg, tuple[str, bytes, int], asyncio.Future[Result]]]) -> None:
        self.rounds += 1
        self._sending = [ad_id for _, (ad_id, _, _), _ in batch]
        try:
            results = await self._store.update_many([write for _, write, _ in batch], final=True)
        except BaseException as exc:  # noqa: BLE001 - a cancelled loop (update_many answers per write): tell each
            for *_, future in batch:
                if not future.done():
                    future.cancel() if isinstance(exc, asyncio.CancelledError) else future.set_exception(exc)
            raise
        written = [msg for (msg, _, _), result in zip(batch, results, strict=True) if isinstance(result, int)]
        self.written += len(written)
        # into nats-py's pending buffer, all in this turn: the round's acks leave in one write (queue/hpub.ack_all)
        for msg in ack_all(getattr(written[0], "_client", None), written) if written else ():  # its connection
            try:
                await msg.ack()  # what ack_all left to nats-py (e.g. a reconnecting connection: it says so)
            except Exception as exc:  # noqa: BLE001 - written: ack_wait redelivers it, found final, acked
                log.debug("ack after a settled write failed: %r", exc)
        for (_, _, future), result in zip(batch, results, strict=True):
            if not future.done():  # its handler may have been cancelled (a shutdown): the round went on
                future.set_result(result)
