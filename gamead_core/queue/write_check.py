"""The storage probe's **write check**: does JetStream store a write in each work stream and in the ad bucket?

:func:`writes_stored` publishes one empty message on a subject no consumer reads (:func:`check_targets`) to each
target in turn and purges that subject at once. What it counts (:func:`refusal`, pure):

* **stored**, or **refused with a definite answer that is not a storage failure**: the stream is at a limit with
  ``discard: new`` (10077 "maximum messages exceeded", :class:`~gamead_core.errors.QueueFull`), the stream has no
  leader right now or is missing (no responders), or another JetStream API error. The target *answered*: its
  storage works, and a full queue or a leader election is not this node's storage failing (and would hold every
  API node unready at once, leaving a load balancer nothing).
* **not stored**: a storage refusal (10023 "insufficient resources", 10077 other than a limit, 10002, 10028, 10047,
  10005 "insufficient storage": :class:`~gamead_core.errors.StorageFailed`), no answer in time (a full disk: the
  stream's write error), or no connection. The check stops at the first such target.

Each check first adds its work-stream writes to a shared counter (:mod:`gamead_core.queue.check_count`), which the
stats samplers take off the streams' growth: a check is no queued ad in ``gamead top`` or the autoscaler.

Leftovers: a publish nats-py buffered through a disconnect inside a check may be stored after the check and its
purge. Such a message never matters and never lingers: no consumer filters on its subject (it is never in a
level's backlog), ``gamead doctor`` skips it (:func:`is_check_subject`), an empty value is no record to ``ads
list``, and :func:`purge_checks` removes every one after each reconnect (the probe's run, twice) and each check
(:func:`writes_stored` purges every target, also those after the write that stopped it).
"""

from __future__ import annotations

import asyncio
import contextlib

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import GameadError, QueueUnavailable, StorageFailed
from gamead_core.queue.check_count import count_checks
from gamead_core.queue.connection import translate

#: The last subject token of the write check's messages in each work stream (no consumer filters on it) and its key
#: in the ad bucket (never an ad id: those are 26 base-32 characters or a ``k``-prefixed hash).
CHECK_TOKEN = "storage-check"
_SUFFIX = f".{CHECK_TOKEN}"


def check_subject(partition: int) -> str:
    """The write check's subject in work stream ``partition``: ``<partition's prefix>.storage-check``."""
    return f"{names.work_subject_prefix(partition)}{_SUFFIX}"


def check_targets(partitions: int) -> list[tuple[str, str]]:
    """(stream, subject) of each write check message: :func:`check_subject` in each of the ``partitions`` work
    streams, then key ``storage-check`` in the ad bucket."""
    targets = [(names.work_stream(p), check_subject(p)) for p in range(partitions)]
    targets.append((names.ADS_BUCKET_STREAM, names.kv_subject(names.ADS_BUCKET, CHECK_TOKEN)))
    return targets


def is_check_subject(subject: str) -> bool:
    """True if ``subject`` is a write check's (a work stream's or the ad bucket's): never an ad."""
    return subject.endswith(_SUFFIX)


def refusal(exc: BaseException) -> str | None:
    """Pure: why a check write was refused with a definite answer that is not a storage failure (the target
    answered: see the module docstring), or None when ``exc`` means the write was not stored (a storage refusal,
    a timeout, a connection error)."""
    if isinstance(exc, nats.js.errors.APIError):
        error = translate(exc)
        return None if isinstance(error, StorageFailed) else error.message  # type: ignore[union-attr]
    if isinstance(exc, (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError)):
        return "no responders: the stream has no leader right now, or is missing"
    return None


async def writes_stored(js: JetStreamContext, partitions: int, timeout: float) -> list[str]:
    """Store one empty message on each of :func:`check_targets` (``partitions`` work streams and the ad bucket),
    purging its subject at once (also after a failure: a write stored late goes too; the bucket denies deleting
    one message, not a purge by subject, so no marker is left); a check stopped by a write not stored still
    purges every target it did not reach (a leftover of an earlier check goes), unless NATS is disconnected.
    ``timeout``: seconds per publish.

    Returns the targets that refused with a definite answer other than a storage failure, as
    ``"<stream>: <why>"`` (empty: every write was stored). Raises :class:`~gamead_core.errors.GameadError`
    (naming the stream) at the first write not stored: a storage refusal, no answer in time, no connection."""
    refused: list[str] = []
    targets = check_targets(partitions)
    reached = stored = 0
    # counted before they are written, so no sampler takes them for ads; those not stored are taken back after
    counted = js._nc.is_connected and await _count(js, partitions, timeout)
    try:
        for stream, subject in targets:
            if not js._nc.is_connected:  # a publish would wait in the reconnect buffer and be stored after the check
                raise QueueUnavailable(f"NATS is not connected (write check of {stream})")
            reached += 1
            try:
                await js.publish(subject, b"", timeout=timeout, stream=stream)
                if reached <= partitions:  # a work stream's (the ad bucket's is no queued ad)
                    stored += 1
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                if (why := refusal(exc)) is None:
                    error = translate(exc)
                    if isinstance(error, GameadError):
                        raise type(error)(f"{error.message} ({stream})") from exc
                    raise error from exc  # pragma: no cover - translate maps every NATS error
                refused.append(f"{stream}: {why}")
            finally:
                with contextlib.suppress(Exception):
                    await js.purge_stream(stream, subject=subject)
    finally:
        if reached < len(targets) and js._nc.is_connected:  # stopped early: purge the rest too
            await _purge(js, targets[reached:])
        if counted and stored < partitions and js._nc.is_connected:
            await _count(js, stored - partitions, timeout)
    return refused


async def _count(js: JetStreamContext, n: int, timeout: float) -> bool:
    """Add ``n`` to the check counter (:mod:`gamead_core.queue.check_count`) within ``timeout`` seconds: whether
    it was written (a store that takes no write is the check's to say)."""
    try:
        return await asyncio.wait_for(count_checks(js, n), timeout)
    except asyncio.TimeoutError:
        return False


async def purge_checks(js: JetStreamContext, partitions: int) -> None:
    """Purge every write check subject (:func:`check_targets`): a message stored after its check goes. Never
    raises (a target that cannot be purged now is purged at the next check or reconnect)."""
    await _purge(js, check_targets(partitions))


async def _purge(js: JetStreamContext, targets: list[tuple[str, str]]) -> None:
    for stream, subject in targets:
        with contextlib.suppress(Exception):
            await js.purge_stream(stream, subject=subject)
