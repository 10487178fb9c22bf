"""Submits whose answer was ambiguous, settled in the background (:class:`Unsettled`).

The un-keyed submit path writes the record, then the message (:mod:`gamead_core.intake`). An ack that does not
come in time (NATS stalled, a stream leader failing over) leaves the client a 503 and the write perhaps stored,
perhaps not. Left alone, a stored record without its message is a ``queued`` ad no worker will ever see (a
``gamead doctor`` ``no_message``; the cluster fail-over test found one). So each ambiguous write is finished
here, retried every :data:`RETRY_EVERY` s until NATS answers (at most :data:`TRIES` times):

* a record create without an answer: its delete marker is sent until acknowledged (the id is fresh and was
  never published: nobody else writes it);
* a message publish without an answer: it is published again with the same ``Nats-Msg-Id``, which JetStream
  deduplicates within the stream's duplicate window (``queue.duplicate_window``), until acknowledged: stored now or
  before, the ad has its record and its message and completes, as an ambiguous publish always could. A
  refusal that says the stream cannot take it (full, storage failed, missing) takes the record back.

What cannot be settled in that time (NATS away longer), or beyond :data:`MAX_PENDING` at once, is logged and
left to ``gamead doctor --repair``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from nats.js import JetStreamContext

from gamead_core.errors import GameadError, QueueFull, StorageFailed, TopologyMissing
from gamead_core.queue.publish import publish_ad_acked
from gamead_core.store.ads import AdStore

log = logging.getLogger(__name__)

RETRY_EVERY = 1.0  #: seconds between two tries of one ambiguous write
TRIES = 30  #: tries before the write is left to the doctor
MAX_PENDING = 1000  #: ambiguous writes settled at once (beyond: left to the doctor, memory stays bounded)


class Unsettled:
    """The background settlement of one API process's ambiguous submits (see the module doc). ``timeout``:
    ``api.publish_timeout``; ``partitions``: ``queue.partitions``."""

    def __init__(self, js: JetStreamContext, store: AdStore, *, timeout: float, partitions: int = 1) -> None:
        self._js = js
        self._store = store
        self._timeout = timeout
        self._partitions = partitions
        self._tasks: set[asyncio.Task[None]] = set()
        #: True while more than ``nats.max_pending_bytes`` wait to be sent (set by the API's QueueLink): a try is
        #: then skipped, as a request's write is refused (up to MAX_PENDING tries a second, unbounded otherwise)
        self.held: Callable[[], bool] = lambda: False

    def __len__(self) -> int:
        return len(self._tasks)

    def record_maybe_created(self, ad_id: str) -> None:
        """The create of ``ad_id``'s record got no answer: withdraw it (a delete marker, until acknowledged)."""
        self._spawn(ad_id, self._withdraw(ad_id))

    def message_maybe_published(self, ad_id: str, level: int, payload: bytes, revision: int) -> None:
        """The publish of ``ad_id`` (its record at ``revision``, ``payload`` its bytes) got no answer: publish
        it again under the same message id until acknowledged (see the module doc)."""
        self._spawn(ad_id, self._publish(ad_id, level, payload, revision))

    async def close(self) -> None:
        """Stop settling (the API is stopping); what is left is the doctor's."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, ad_id: str, work: Coroutine[Any, Any, None]) -> None:
        if len(self._tasks) >= MAX_PENDING:
            work.close()
            log.warning("ad %s: an ambiguous submit is left to gamead doctor (%d being settled already)", ad_id,
                        len(self._tasks), extra={"ad_id": ad_id})
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _withdraw(self, ad_id: str) -> None:
        for _ in range(TRIES):
            if self.held():
                await asyncio.sleep(RETRY_EVERY)
                continue
            try:
                await self._store.withdraw(ad_id)
                return
            except GameadError:
                await asyncio.sleep(RETRY_EVERY)
        log.warning("ad %s: the record of a 503'd submit could not be withdrawn; gamead doctor will find it",
                    ad_id, extra={"ad_id": ad_id})

    async def _publish(self, ad_id: str, level: int, payload: bytes, revision: int) -> None:
        for _ in range(TRIES):
            if self.held():
                await asyncio.sleep(RETRY_EVERY)
                continue
            try:
                await publish_ad_acked(self._js, ad_id=ad_id, level=level, payload=payload, timeout=self._timeout,
                                       partitions=self._partitions, record_revision=revision)
                return
            except (QueueFull, StorageFailed, TopologyMissing):  # refused: whether or not it was stored before
                # (a stored copy answers "duplicate", never a refusal), take the record back
                try:
                    await self._store.delete_created(ad_id, revision)
                except GameadError:
                    pass  # the doctor's no_message
                return
            except GameadError:
                await asyncio.sleep(RETRY_EVERY)
        log.warning("ad %s: the message of a 503'd submit could not be confirmed; gamead doctor will find it",
                    ad_id, extra={"ad_id": ad_id})
