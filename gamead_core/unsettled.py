"""Submits whose answer was ambiguous, settled in the background (:class:`Unsettled`).

The un-keyed submit path writes the record, then the message (:mod:`gamead_core.intake`). An ack that does not
come in time (NATS stalled, a stream leader failing over) leaves the client a 503 and the write perhaps stored,
perhaps not. Left alone, a stored record without its message is a ``queued`` ad no worker will ever see (a
``gamead doctor`` ``no_message``; the cluster fail-over test found one). So each ambiguous write is finished
here, tried again every :data:`RETRY_EVERY` s until NATS answers (for up to :data:`TRIES` rounds):

* a record create without an answer: settled by :func:`~gamead_core.store.create_fence.withdraw_creates`, never
  blindly: the key is read, and the create deleted only while it is exactly as this API wrote it (a delete marker
  expecting its revision, or expecting the key empty: a create landing after it is then refused). A lost
  compare-and-set is read again next round; a record written since by another is theirs (attack33b F1: an API
  whose acks did not come was taken for dead by the reaper, which queued its records; workers analysed them, and
  this settling then deleted the completed records, their clients told "not queued: safe to resend"): the reaper
  re-puts a record by compare-and-set before it publishes its message (:mod:`gamead_core.worker.orphans`), so
  exactly one of the two wins, whatever the timing; a record found so is logged as queued (``GET /ads/ID`` finds
  it), not withdrawn. The interleavings: :mod:`gamead_core.store.create_fence`;
* a record whose message JetStream refused (the stream full or missing, or a publish that never left the
  client), and whose take-back failed too (the records' stream failing over with the work stream's: the
  fail-over test found one ``no_message`` this way): its compare-and-set delete marker is sent until
  acknowledged or lost (the record changed: someone else owns it);
* a message publish without an answer: it is published again with the same ``Nats-Msg-Id``, which JetStream
  deduplicates within the stream's duplicate window (``queue.duplicate_window``), until acknowledged: stored now or
  before, the ad has its record and its message and completes, as an ambiguous publish always could. An
  error ack that says the stream cannot take it (full, storage failed) takes the record back, as above; "no
  responders" (no stream, or a stream electing a leader: a reviewer saw a take-back then leave a stored
  message without its record) is tried again like a timeout, and has the API's topology watch look at once;
  once that watch finds the queue repartitioned under this node and the stream of the ad's partition gone (it was
  deleted empty: no first try is kept to repeat), the ad is published by the queue's live partitions
  (:func:`~gamead_core.queue.partitions.settle_by`) if its record is still exactly as this API created it (read
  first: one a worker took, its message delivered before the stream went, is settled): before, it was
  published to the removed stream for 5 minutes, a ``queued`` record without a message whose client had been told
  "queued (found)" (repart38; attack38a F2: 1 ad of 4,800 in a live repartition 3 → 1).

One task settles them all, in rounds: every pending write is sent back to back, :data:`CHUNK` at a time, and
their acks awaited together (:func:`~gamead_core.queue.acks.publish_many`), skipping a round while the
connection's outbound buffer is over ``nats.max_pending_bytes``. What waits is an id and perhaps a revision (a
withdrawal) or an id and its record's bytes (a publish), bounded by :data:`MAX_WITHDRAWALS` and
:data:`MAX_PUBLISH_BYTES`, so a stall under a burst is settled whole: a reviewer's 40 batches of 100 ads
503'd in a 4 s stall left 3,000 records without a message when this was a task per write capped at 1,000.
While either bound is reached :attr:`full` is True and the API refuses new submits (503) rather than leave
their writes unsettled; what is not settled within :data:`TRIES` rounds (NATS away longer) is logged and left
to ``gamead doctor --repair``. What is pending when the API dies is lost with it: the reaper then queues the
records it left without a message (:mod:`gamead_core.worker.orphans`), those written recently enough for their
publish to be deduplicated still (:func:`~gamead_core.worker.orphans.reaper_reach`); the shutdown line says how many
are left to it and how many to the doctor. After :meth:`Unsettled.close` no round starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from nats.js import JetStreamContext

from gamead_core.errors import (
    GameadError,
    NotFound,
    QueueFull,
    StorageFailed,
    WorkStreamMissing,
)
from gamead_core.log_throttle import Throttle
from gamead_core.queue.partitions import PartitionChange, settle_by
from gamead_core.queue.publish import Outgoing, publish_ads
from gamead_core.stop_bound import ended
from gamead_core.store.ads import AdStore, Versioned
from gamead_core.store.create_fence import OWNED, withdraw_creates

log = logging.getLogger(__name__)

RETRY_EVERY = 1.0  #: seconds between two rounds
TRIES = 300  #: rounds an ambiguous write is tried in before it is left to the doctor (~5 minutes)
CHUNK = 500  #: writes sent back to back before their acks are awaited
MAX_WITHDRAWALS = 100_000  #: ambiguous record creates waiting at once (an id each: a few MB at most)
MAX_PUBLISH_BYTES = 32 * 1024 * 1024  #: bytes of ambiguous messages waiting at once
LAST_ROUND = 3.0  #: seconds the round at shutdown may take (within the API's drain)


class _Publish(NamedTuple):
    level: int
    payload: bytes
    revision: int


class Unsettled:
    """The background settlement of one API process's ambiguous submits (see the module doc). ``timeout``:
    ``api.publish_timeout``; ``partitions``: ``queue.partitions``; ``reaper_reach``: seconds before a stop within
    which a write left then is still the reaper's (:func:`gamead_core.worker.orphans.reaper_reach`; ≤ 0: none is)."""

    def __init__(self, js: JetStreamContext, store: AdStore, *, timeout: float, partitions: int = 1,
                 reaper_reach: float = 0.0) -> None:
        self._js = js
        self._store = store
        self._timeout = timeout
        self._partitions = partitions
        #: ad id → the revision a take-back deletes at (None: a create without an answer, read first), in order
        self._withdrawals: dict[str, int | None] = {}
        self._publishes: dict[str, _Publish] = {}
        self._tries: dict[str, int] = {}  # ad id → rounds tried so far (either kind)
        self._since: dict[str, float] = {}  # ad id → time.monotonic() when it was first left here
        self._reach = reaper_reach
        self._publish_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False  #: close() ran: the API is stopping
        self._late: list[str] = []  #: ad ids left after close(), to be said in the next line
        self._failures = Throttle(every=60.0)  #: a round that fails unexpectedly logs its traceback once a minute
        #: True while more than ``nats.max_pending_bytes`` wait to be sent (set by the API's QueueLink): a round
        #: is then skipped, as a request's write is refused
        self.held: Callable[[], bool] = lambda: False
        #: the work streams found not to fit ``queue.partitions`` (the API's topology watch's ``mismatch``; None:
        #: they fit), and its poke, called when a publish reached no stream (set by the API's QueueLink)
        self.repartitioned: Callable[[], PartitionChange | None] = lambda: None
        self.stream_missing: Callable[[], None] = lambda: None

    def __len__(self) -> int:
        return len(self._withdrawals) + len(self._publishes)

    @property
    def full(self) -> bool:
        """True while either bound is reached: a new submit could leave a write nobody settles (refuse it)."""
        return len(self._withdrawals) >= MAX_WITHDRAWALS or self._publish_bytes >= MAX_PUBLISH_BYTES

    def record_maybe_created(self, ad_id: str) -> None:
        """The create of ``ad_id``'s record got no answer: withdraw it while it is still as this API wrote it (a
        compare-and-set delete marker, until acknowledged), else leave it to whoever wrote it since (the module doc)."""
        self._withdraw(ad_id, None)

    def take_back(self, ad_id: str, revision: int) -> None:
        """The message of ``ad_id`` (its record at ``revision``) was refused and the record could not be deleted
        yet: delete it at ``revision`` (a compare-and-set delete marker) until acknowledged or lost."""
        self._withdraw(ad_id, revision)

    def _withdraw(self, ad_id: str, revision: int | None, since: float | None = None) -> None:
        """Withdraw ``ad_id``'s record (at ``revision``; None: any); ``since``: when its write was first left here
        (monotonic seconds; None: now), kept when a refused publish hands it over as a take-back."""
        if len(self._withdrawals) >= MAX_WITHDRAWALS:
            self._left_to_doctor(ad_id, "record")
            return
        self._withdrawals[ad_id] = revision
        self._since.setdefault(ad_id, time.monotonic() if since is None else since)
        self._wake(ad_id)

    def message_maybe_published(self, ad_id: str, level: int, payload: bytes, revision: int) -> None:
        """The publish of ``ad_id`` (its record at ``revision``, ``payload`` its bytes) got no answer: publish
        it again under the same message id until acknowledged (see the module doc)."""
        if ad_id in self._publishes:
            return
        if self._publish_bytes + len(payload) > MAX_PUBLISH_BYTES:
            self._left_to_doctor(ad_id, "message")
            return
        self._publishes[ad_id] = _Publish(level, payload, revision)
        self._publish_bytes += len(payload)
        self._since.setdefault(ad_id, time.monotonic())
        self._wake(ad_id)

    async def close(self) -> None:
        """Stop settling (the API is stopping): one last round for what is pending, at most
        :data:`LAST_ROUND` seconds (NATS may be back since the last one); what is left after it is the reaper's (the
        API leaves its registry entry to expire: :func:`gamead_core.registry.beat.run_heartbeat`) while written
        within ``reaper_reach`` s, else the doctor's; one line says which, ad ids logged. Final: no round starts
        after it (a write left meanwhile is counted, not sent, and said in a line of its own, as the reaper's or the
        doctor's); a second call returns at once."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:  # cancelled again if a NATS await took the cancel (hang50)
            await ended([self._task], 1.0, "the settling rounds")
        if len(self):
            try:
                await asyncio.wait_for(self._round(), LAST_ROUND)
            except Exception as exc:  # noqa: BLE001 - stopping: what is left is logged below
                log.info("settling ambiguous submits at shutdown: %r", exc)
        if len(self):
            self._say_left([*self._withdrawals, *self._publishes])

    def _say_late(self) -> None:
        late, self._late = self._late, []
        self._say_left(late, "after shutdown (by a request still in flight)")

    def _say_left(self, ad_ids: list[str], when: str = "at shutdown") -> None:
        """The WARNING line saying whose ``ad_ids`` (left unsettled) are: the reaper's or the doctor's."""
        # the age of the write, not of its wait here: it was left here after its ack did not come within
        # api.publish_timeout, so the record (and a publish the reaper's must be deduplicated with) is older
        now = time.monotonic()
        ages = [now - self._since.get(ad_id, now) + self._timeout for ad_id in ad_ids]
        log.warning(left_at_shutdown(ages, self._reach, when), extra={"ad_ids": ad_ids[:100]})

    def _wake(self, ad_id: str) -> None:
        if self._closed:  # stopping: the NATS connection is closing; what is left now is counted and said
            if not self._late:  # one line for those a request (a batch: many) leaves at once
                asyncio.get_running_loop().call_soon(self._say_late)
            self._late.append(ad_id)
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gamead-unsettled")

    async def _run(self) -> None:
        while self._withdrawals or self._publishes:
            if not self.held():
                try:
                    await self._round()
                except GameadError as exc:  # a whole round failed (NATS away): the next one tries again
                    log.info("settling ambiguous submits: %s", exc.message)
                except Exception:  # noqa: BLE001 - a bug must not end the settling of everything pending
                    if (left_out := self._failures.allow("round", time.monotonic())) is not None:  # once a minute
                        log.exception("settling ambiguous submits: a round failed (%d more since the last such "
                                      "line)", left_out)
            if self._withdrawals or self._publishes:
                await asyncio.sleep(RETRY_EVERY)

    async def _round(self) -> None:
        withdrawals = list(self._withdrawals.items())
        for start in range(0, len(withdrawals), CHUNK):
            chunk = withdrawals[start:start + CHUNK]
            backs = [(ad_id, revision) for ad_id, revision in chunk if revision is not None]
            for (ad_id, _), answer in zip(backs, await self._store.withdraw_many(backs) if backs else [], strict=True):
                self._tried(ad_id, answer is None, "record")
            creates = [ad_id for ad_id, revision in chunk if revision is None]
            owned = []
            for ad_id, verdict in zip(creates, await withdraw_creates(self._store, creates) if creates else [],
                                      strict=True):
                self._tried(ad_id, not isinstance(verdict, GameadError), "record")
                if verdict == OWNED:
                    owned.append(ad_id)
            if owned:
                log.warning("%d ambiguous submit(s) of this API were queued by another meanwhile (the reaper, which "
                            "took this API for dead while NATS did not answer it): not withdrawn, they run (GET "
                            "/ads/ID finds them)", len(owned), extra={"ad_ids": owned[:100]})
            if self.held():
                return
        ids, change = list(self._publishes), self.repartitioned()
        for start in range(0, len(ids), CHUNK):
            groups: dict[int, list[tuple[str, _Publish]]] = {}  # queue.partitions to publish by → its ads
            for ad_id in ids[start:start + CHUNK]:
                by = settle_by(ad_id, self._partitions, change)
                groups.setdefault(by, []).append((ad_id, self._publishes[ad_id]))
            for partitions, chunk in groups.items():
                if partitions != self._partitions:  # its stream was removed by a repartition
                    chunk = await self._unpaired(chunk, partitions)
                if chunk:
                    await self._publish(chunk, partitions)
            if self.held():
                return

    async def _publish(self, chunk: list[tuple[str, _Publish]], partitions: int) -> None:
        """Publish the ads of ``chunk`` again, by ``partitions``; each settled or tried once more by its answer."""
        answers = await publish_ads(self._js, [Outgoing(ad_id, p.level, p.payload, p.revision) for ad_id, p
                                               in chunk], timeout=self._timeout, partitions=partitions)
        missing = False
        for (ad_id, pending), answer in zip(chunk, answers, strict=True):
            # an error ack: JetStream looks up the message id before it stores, so a try stored before
            # would have been answered "duplicate"; not "no responders" (a stream electing a leader):
            # that says nothing of the earlier try, which is sent again
            refused = isinstance(answer, (QueueFull, StorageFailed))
            missing = missing or isinstance(answer, WorkStreamMissing)
            since = self._since.get(ad_id)  # the write's age goes on across the hand-over to a take-back
            self._tried(ad_id, refused or not isinstance(answer, Exception), "message")
            if refused:  # stored before or not, the stream cannot take it now: take the record back
                self._withdraw(ad_id, pending.revision, since)
        if missing:  # deleted, or repartitioned under this node: the topology watch tells which now
            self.stream_missing()

    async def _unpaired(self, chunk: list[tuple[str, _Publish]], partitions: int) -> list[tuple[str, _Publish]]:
        """Those of ``chunk`` (ads whose partition's stream a repartition removed) whose record is still at the
        revision this API created it at, to be published by the queue's ``partitions``: one read each (the
        leader's). A record changed or gone is settled (a worker took its message before the stream was deleted,
        or it was deleted); a failed read is tried again next round."""
        reads = await asyncio.gather(*(self._store.get(ad_id, consistent=True) for ad_id, _ in chunk),
                                     return_exceptions=True)
        out = []
        for (ad_id, pending), read in zip(chunk, reads, strict=True):
            if isinstance(read, Versioned) and read.revision == pending.revision:
                out.append((ad_id, pending))
            elif isinstance(read, (Versioned, NotFound)):
                self._tried(ad_id, True, "message")
            elif isinstance(read, GameadError):
                self._tried(ad_id, False, "message")
            else:
                raise read
        if out:
            log.warning("%d ambiguous submit(s) of a partition removed by a repartition (the queue has %d "
                        "partitions, this node is configured for %d): published by the queue's partitions",
                        len(out), partitions, self._partitions, extra={"ad_ids": [a for a, _ in out][:100]})
        return out

    def _tried(self, ad_id: str, settled: bool, what: str) -> None:
        """One round's answer for ``ad_id``: settled, or given up after :data:`TRIES` rounds, it leaves (a caller
        that hands it on, as a take-back, passes its ``_since`` on)."""
        tries = self._tries.get(ad_id, 0) + 1
        if not settled and tries < TRIES:
            self._tries[ad_id] = tries
            return
        self._tries.pop(ad_id, None)
        self._since.pop(ad_id, None)
        self._withdrawals.pop(ad_id, None)
        if (pending := self._publishes.pop(ad_id, None)) is not None:
            self._publish_bytes -= len(pending.payload)
        if not settled:
            self._left_to_doctor(ad_id, what)

    @staticmethod
    def _left_to_doctor(ad_id: str, what: str) -> None:
        log.warning("ad %s: the %s of a 503'd submit could not be settled; gamead doctor will find it", ad_id, what,
                    extra={"ad_id": ad_id})


def left_at_shutdown(ages: list[float], reach: float, when: str = "at shutdown") -> str:
    """The shutdown line for the writes left unsettled ``when``, ``ages`` the seconds since each was written (pure):
    the reaper queues those younger than ``reach`` s (:func:`gamead_core.worker.orphans.reaper_reach`) once this
    node's registry entry expires (or, the registry lost with NATS, a reaper finds them by their records within the
    window: :mod:`gamead_core.worker.orphan_read`); the others only ``gamead doctor --repair`` settles."""
    theirs = sum(1 for age in ages if age < reach)
    said = f"{len(ages)} ambiguous submits left unsettled {when}"
    if theirs == len(ages):
        return (f"{said}: the reaper (of a running worker) queues them once this node's registry entry expires "
                "(registry.ttl), or a worker's reaper finds them after a restart of NATS within "
                "queue.duplicate_window; later than that, `gamead doctor --repair` settles them")
    if reach <= 0:
        why = ("registry.ttl + a reaper round leaves nothing of queue.duplicate_window (less its safety margin), so "
               "the reaper can queue none of them")
    else:
        why = (f"{len(ages) - theirs} were written more than {reach:g}s ago, too late for the reaper to queue within "
               f"queue.duplicate_window (it queues the other {theirs})")
    return f"{said}: {why}; run `gamead doctor --repair` once this node's registry entry has expired (registry.ttl)"
