"""JetStream atomic batch publish (NATS ADR-50; nats-server >= 2.12.1): messages to one stream stored all together or
not at all, with **one** ack for the whole batch instead of one per message (issue 14.3: the acks were about a third
of a batched ad's API CPU).

The wire (ADR-50, "Atomic Batched Publishes"): every message carries ``Nats-Batch-Id`` (<= 64 characters, unique
among the stream's batches in flight) and ``Nats-Batch-Sequence`` (1, 2, … without a gap); the last one also
``Nats-Batch-Commit: 1``. Only the commit has a reply subject: the server answers the other messages only when
asked (with an empty message), and anything that went wrong before the commit (a message lost on the way, the
feature off, a gap) makes the commit's answer an error. The ack of a committed batch is the pub ack of its last
message with ``"count"``; the batch's messages hold the ``count`` stream sequences ending at its ``seq`` (the
server stores a batch without interleaving: under the stream's isolation lock on R1, as one multi-proposal on a
replicated stream), so each message's sequence, a KV record's revision, is known.

What :func:`publish_batch` tells its caller:

* it returns the stream sequences: every message is stored;
* :class:`BatchRefused`: an error ack (the server checks the whole batch, expected sequences, duplicate
  ``Nats-Msg-Id`` s and the stream's limits, before it stores any of it), no stream, or a send that failed before
  the commit left: nothing of the batch is stored. Callers send the messages again one by one, so each gets its
  own answer (a full stream takes some of them);
* :class:`BatchUnanswered`: no ack within ``timeout``, or an ack that does not confirm the batch (no ``count``: a
  server that does not know batches stored each message as a plain one, unacknowledged; another stream): any of
  the messages may be stored. Callers settle each message as they settle an unanswered publish.

Limits (ADR-50, nats-server's defaults): <= :data:`MAX_BATCH` messages a batch, 50 batches in flight per stream
and 1,000 per server (more: refused with 10210), a batch idle 10 s is abandoned. A stream needs ``allow_atomic``
(the topology sets it on the work streams and the records' bucket); one without it refuses with 10174, and
:class:`AtomicBatches` then leaves that stream alone for :data:`RETRY_AFTER` seconds. On a replicated stream a
leader change abandons a batch not yet committed (its commit is refused: incomplete) and one being committed
is unanswered or acknowledged, as any publish.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError

from gamead_core import names
from gamead_core.queue.acks import publish_acked
from gamead_core.queue.liveness import admit, connection_of, wire_size

__all__ = ["MAX_BATCH", "RETRY_AFTER", "AtomicBatches", "BatchRefused", "BatchUnanswered", "atomic_wanted",
           "publish_batch", "server_takes_atomic"]

#: nats-server's limit of messages in one atomic batch (``streamDefaultMaxAtomicBatchSize``, ADR-50)
MAX_BATCH = 1000
#: seconds a stream that refused atomic batches (10174) or did not confirm one is written message by message
RETRY_AFTER = 60.0
#: the first nats-server that takes ``Nats-Msg-Id`` inside an atomic batch (ADR-50, revision 6)
MIN_SERVER = (2, 12, 1)


def server_takes_atomic(js: JetStreamContext) -> bool:
    """True when the nats-server ``js`` is connected to takes atomic batches (at least :data:`MIN_SERVER`). False
    before its first INFO (nats-py's "0.0.0-unknown") and for a version nats-py cannot parse: do not guess. An
    older server drops a stream's ``allow_atomic``, so gamead neither asks for it nor compares it there
    (:func:`gamead_core.queue.topology_plan.wanted_topology`, attack39b F13)."""
    try:
        version = connection_of(js).connected_server_version
        return (version.major, version.minor, version.patch) >= MIN_SERVER
    except (TypeError, ValueError, AttributeError):
        return False


#: JetStream's "atomic publish is disabled" (the stream has no ``allow_atomic``)
ATOMIC_DISABLED = 10174

_ID, _SEQ, _COMMIT = names.HDR_BATCH_ID, names.HDR_BATCH_SEQUENCE, names.HDR_BATCH_COMMIT


def atomic_wanted(mode: str, replicas: int) -> bool:
    """Whether ``POST /ads/batch`` writes atomic batches, from ``api.batch_atomic`` (``auto``, ``always``, ``never``)
    and ``queue.replicas``. ``auto``: only on replicated streams. Why (measured, ``benchmarks/README.md``): a
    replicated stream stages a batch in memory and proposes it as one multi-entry, so a batch of 100 ads cost
    less of everything than 100 acked publishes (R3 on loopback: API 25-38 vs 40-49 µs, the three nodes 57-78 vs
    85-88 µs of CPU per ad); an R1 file stream stages each batch in a file store of its own on disk, created and
    deleted per batch, and its commit holds the stream's lock while it copies the batch in: the API saves
    ~8 µs per ad but nats-server spends about twice its CPU (42-47 vs 21-25 µs) and a closed-loop batch run
    accepted 2-4× fewer ads per second. Pure."""
    return mode == "always" or (mode == "auto" and replicas > 1)


class BatchRefused(Exception):
    """Nothing of the batch was stored; ``cause`` is what refused it (nats-py's ``APIError`` subclass of the error
    ack, ``NoStreamResponseError``, or the error of a send that failed before the commit left)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"atomic batch refused: {cause!r}")
        self.cause = cause

    @property
    def disabled(self) -> bool:
        """True when the stream does not take atomic batches (error 10174)."""
        return isinstance(self.cause, APIError) and getattr(self.cause, "err_code", None) == ATOMIC_DISABLED


class BatchUnanswered(Exception):
    """Any message of the batch may be stored: its ack did not come in time (``cause`` is the
    ``asyncio.TimeoutError``) or did not confirm the batch (``cause`` None)."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


async def publish_batch(js: JetStreamContext, messages: Sequence[tuple[str, bytes, dict[str, str]]], *,
                        stream: str, timeout: float) -> range:
    """Publish ``messages`` (each ``(subject, payload, headers)``; 1 to :data:`MAX_BATCH` of them, every subject one
    of ``stream``'s) as one atomic batch and wait at most ``timeout`` seconds for its one ack. Each message is sent
    with its headers and the batch's (a copy: one headers dict may serve every message). Sent whole or not at
    all: a batch that would take the bytes waiting to be sent over ``nats.max_pending_bytes`` is refused before
    its first message (:func:`gamead_core.queue.liveness.admit`).

    Returns the stream sequences of the messages, in order (a ``range`` of ``len(messages)``). Raises
    :class:`BatchRefused` (nothing stored) or :class:`BatchUnanswered` (any may be stored); never a nats-py error.
    """
    count = len(messages)
    if not 0 < count <= MAX_BATCH:
        raise ValueError(f"an atomic batch has 1-{MAX_BATCH} messages, not {count}")
    nc = connection_of(js)
    publish = nc.publish
    batch_id = uuid.uuid4().hex
    batch = [(subject, payload, {**headers, _ID: batch_id, _SEQ: str(seq)})
             for seq, (subject, payload, headers) in enumerate(messages, 1)]
    batch[-1][2][_COMMIT] = "1"
    try:
        # the whole batch or none of it on the way (a stalled server: nats.max_pending_bytes), not cut part-way
        admit(nc, sum(wire_size(subject, payload, headers=headers) for subject, payload, headers in batch))
        for subject, payload, headers in batch[:-1]:
            await publish(subject, payload, headers=headers)
        subject, payload, headers = batch[-1]
        future = await publish_acked(js, subject, payload, headers=headers, timeout=timeout)
    except (nats.errors.Error, asyncio.TimeoutError) as exc:  # the commit did not leave: the batch is abandoned
        raise BatchRefused(exc) from exc
    try:
        ack = await future
    except (APIError, NoStreamResponseError) as exc:
        raise BatchRefused(exc) from exc
    except asyncio.TimeoutError as exc:
        raise BatchUnanswered(f"the atomic batch of {count} messages to {stream} was not answered in time",
                              exc) from exc
    if ack.stream != stream or ack.count != count:
        raise BatchUnanswered(f"the atomic batch of {count} messages to {stream} was answered by stream "
                              f"{ack.stream!r} with count {ack.count}: not confirmed")
    return range(ack.seq - count + 1, ack.seq + 1)


class AtomicBatches:
    """Whether a batch to a stream is sent as atomic batches now: ``enabled`` (:func:`atomic_wanted`), the connected
    server is at least :data:`MIN_SERVER`, and the stream has not refused (:meth:`refused`) or failed to confirm
    (:meth:`unconfirmed`) one in the last :data:`RETRY_AFTER` seconds. Memory: one entry per stream."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._off_until: dict[str, float] = {}

    def usable(self, js: JetStreamContext, stream: str) -> bool:
        """True when a batch to ``stream`` should be tried as an atomic batch."""
        if not self.enabled:
            return False
        until = self._off_until.get(stream)
        if until is not None:
            if time.monotonic() < until:
                return False
            del self._off_until[stream]
        return self._server_supports(js)

    def _server_supports(self, js: JetStreamContext) -> bool:
        return server_takes_atomic(js)

    def refused(self, stream: str, exc: BatchRefused) -> None:
        """Note a refusal: a stream without ``allow_atomic`` is written message by message for a while."""
        if exc.disabled:
            self._off_until[stream] = time.monotonic() + RETRY_AFTER

    def unconfirmed(self, stream: str) -> None:
        """Note an ack that did not confirm a batch (a server that does not know them): leave the stream alone."""
        self._off_until[stream] = time.monotonic() + RETRY_AFTER

