"""Which store is full: a JetStream "maximum … exceeded" refusal named after the stream or bucket that refused.

JetStream's refusal of a write to a stream at its limit (error 10077, "maximum messages exceeded", ``discard:
new``) names no stream, and :func:`gamead_core.queue.connection.translate` makes it :class:`QueueFull` ("the
stream is full"), the work queue's code. Written to another store, that sent operators to the wrong place
(attack31a F5, F9): each store that can refuse so says which one it is and what to free or raise.

* the DLQ (stream ``GAMEAD_DLQ``, ``dlq.max_msgs``, ``discard: new``): :class:`DlqFull` (``dlq_full``);
* the jobs bucket (``gamead_jobs``, ``jobs.max_bytes``): :class:`JobsFull` (``jobs_full``).

The other stores never refuse so: the ad-record bucket and the audit stream drop their oldest values (``discard:
old``; an audit write that fails is :class:`~gamead_core.errors.AuditUnavailable`), and the registry, scaling and
health buckets have no limit of their own (a full server or account store is ``storage_failed``); the work
stream's refusal names its partition's stream (:mod:`gamead_core.queue.publish`).
Both classes are :class:`QueueFull` (503, ``Retry-After``) to every caller that handles a full stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ContextManager
from contextlib import contextmanager

from gamead_core import names
from gamead_core.errors import QueueFull
from gamead_core.queue.connection import nats_boundary


class DlqFull(QueueFull):
    """The DLQ (stream ``GAMEAD_DLQ``) is at ``dlq.max_msgs`` and refused an entry. ``details``: ``{"stream",
    "setting"}``. Nothing was written; the ad stays where it was (a worker keeps it queued and retries)."""

    code = "dlq_full"


class JobsFull(QueueFull):
    """The jobs bucket (``gamead_jobs``) is at ``jobs.max_bytes`` and refused a job's document or work list.
    ``details``: ``{"bucket", "setting"}``. It frees itself as running jobs end (their work lists are deleted) and
    as documents pass ``jobs.retention``."""

    code = "jobs_full"


#: What frees room in a full DLQ (the worker's log, the record's error, the doctor's finding say it)
DLQ_REMEDY = "free room (gamead dlq export, then gamead dlq purge) or raise dlq.max_msgs"


def dlq_full(why: str = "maximum messages exceeded") -> DlqFull:
    """The :class:`DlqFull` of a refusal whose server text is ``why``."""
    return DlqFull(f"the DLQ (stream {names.DLQ_STREAM}) is full ({why}, dlq.max_msgs): {DLQ_REMEDY}",
                   details={"stream": names.DLQ_STREAM, "setting": "dlq.max_msgs"})


def jobs_full(why: str = "maximum bytes exceeded") -> JobsFull:
    """The :class:`JobsFull` of a refusal whose server text is ``why``."""
    return JobsFull(f"the jobs bucket {names.JOBS_BUCKET} is full ({why}, jobs.max_bytes): wait for running jobs to "
                    "end (their work lists are deleted) or raise jobs.max_bytes",
                    details={"bucket": names.JOBS_BUCKET, "setting": "jobs.max_bytes"})


def _why(exc: QueueFull) -> str:
    return exc.message.removeprefix("the stream is full: ")


@contextmanager
def _full_as(kind: type[QueueFull], build: Callable[[str], QueueFull]) -> Iterator[None]:
    """:func:`nats_boundary` for a write to one store: a full stream leaves as ``build(why)`` (a ``kind``)."""
    try:
        with nats_boundary():
            yield
    except QueueFull as exc:
        if isinstance(exc, kind):
            raise
        raise build(_why(exc)) from exc


def dlq_boundary() -> ContextManager[None]:
    """:func:`nats_boundary` for a write to the DLQ: a full stream leaves as :class:`DlqFull`."""
    return _full_as(DlqFull, dlq_full)


def jobs_boundary() -> ContextManager[None]:
    """:func:`nats_boundary` for a write to the jobs bucket: a full bucket leaves as :class:`JobsFull`."""
    return _full_as(JobsFull, jobs_full)
