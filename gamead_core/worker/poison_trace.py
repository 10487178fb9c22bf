"""The trace a terminated poison message leaves (:mod:`gamead_core.worker.poison`), for an operator to find later.

One key, :data:`KEY` of the ``gamead_scaling`` bucket (one value per key: ``history`` 1), rewritten by
compare-and-set: how many poison messages in all and per reason since the stack was made, and the *last* one (when,
which stream, sequence and subject, its size, up to :data:`MAX_HEADERS` headers cut to :data:`MAX_VALUE` characters,
its first :data:`HEAD_BYTES` bytes, printable ASCII with ``\\xNN`` escapes). Each worker writes it at most once per
:data:`TRACE_EVERY` s, in the background after the ``term`` (the counts of the messages in between folded into that
write: :class:`Pending`), and logs one ERROR line per :data:`LINE_EVERY` s, the next saying how many it left out
(review31 R6: a flood cost one ERROR line and a contended compare-and-set loop per message, awaited before the
term). So a flood of poison costs at most one write per second per worker and one value of at most ~30 KB. ``gamead doctor`` reads it
(note ``poison_terminated``, :func:`read_trace`); each worker's ``/metrics`` counts what it terminated itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gamead_core import clock
from gamead_core.errors import error_text
from gamead_core.log_throttle import Throttle
from gamead_core.models import utc_iso
from gamead_core.telemetry.metrics import WorkerMetrics, count_poison
from gamead_core.worker.poison import NotAnAd, quoted
from gamead_core.store.scaling_key import change_key, scaling_bucket

log = logging.getLogger(__name__)

KEY = "poison.last"  #: the trace's key in :data:`gamead_core.names.SCALING_BUCKET`
MAX_HEADERS = 16  #: headers kept of the last message
MAX_VALUE = 200  #: characters kept of each header name and value, of its subject and of the reason
HEAD_BYTES = 200  #: bytes of the body kept (escaped)
TRACE_EVERY = 1.0  #: seconds between two trace writes of one worker
LINE_EVERY = 60.0  #: seconds between two ERROR lines of one worker about poison messages


def printable(data: bytes) -> str:
    """``data`` as printable ASCII: bytes 0x20-0x7e as themselves, every other as ``\\xNN``. Pure."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data)


def _cut(text: object) -> str:
    return printable(str(text).encode("utf-8", "backslashreplace")[:MAX_VALUE])


def sample(msg: Msg, reason: str, why: str, at: float) -> dict[str, Any]:
    """The trace of one terminated delivery ``msg`` (bounded, see the module doc; ``at``: epoch seconds). Pure."""
    meta = msg.metadata
    return raw_sample(meta.stream, meta.sequence.stream, msg.subject, msg.headers, msg.data, reason, why, at)


def raw_sample(stream: str, seq: int, subject: str, headers: dict[str, str] | None, data: bytes | None,
               reason: str, why: str, at: float) -> dict[str, Any]:
    """The trace of one poison message of ``stream`` at ``seq`` (:func:`sample`'s fields, as read). Pure."""
    kept = list((headers or {}).items())[:MAX_HEADERS]
    return {"at": utc_iso(at), "reason": reason, "why": _cut(why), "stream": stream, "seq": seq,
            "subject": _cut(subject), "size": len(data or b""), "headers": {_cut(k): _cut(v) for k, v in kept},
            "head": printable((data or b"")[:HEAD_BYTES])}


def _folded(value: bytes | None, last: dict[str, Any], counts: dict[str, int]) -> bytes:
    try:
        old = orjson.loads(value or b"{}")
        count = int(old.get("count", 0))
        by_reason = {str(k): int(v) for k, v in dict(old.get("byReason", {})).items()}
    except (ValueError, TypeError, AttributeError):
        count, by_reason = 0, {}
    for reason, n in counts.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    return orjson.dumps({"count": count + sum(counts.values()), "byReason": by_reason, "last": last})


class Pending:
    """The poison messages one worker settled since its last trace write (pure: the caller passes the time):
    counts per reason and the last one's sample. :meth:`due` says when the next write may go (at most one per
    ``every`` seconds). Memory: one sample and one count per reason."""

    def __init__(self, every: float = TRACE_EVERY) -> None:
        self.every = every
        self.counts: dict[str, int] = {}
        self.last: dict[str, Any] | None = None
        self._written = float("-inf")  #: monotonic s of the last write taken

    def add(self, last: dict[str, Any]) -> None:
        """Count the poison message ``last`` (:func:`sample`) and make it the one the next write names."""
        self.counts[last["reason"]] = self.counts.get(last["reason"], 0) + 1
        self.last = last

    def due(self, now: float) -> float:
        """Seconds from ``now`` (monotonic) until the next write may go (0: now)."""
        return max(0.0, self._written + self.every - now)

    def take(self, now: float) -> tuple[dict[str, int], dict[str, Any]] | None:
        """The counts and last sample to write at ``now`` (forgotten here), or None when nothing is pending."""
        if self.last is None:
            return None
        out, self.counts, last, self.last = self.counts, {}, self.last, None
        self._written = now
        return out, last


_PENDING = Pending()
_LINES = Throttle(every=LINE_EVERY, max_kinds=1)
_writer: asyncio.Task[None] | None = None


async def _write_pending(js: JetStreamContext) -> None:
    while True:
        await asyncio.sleep(_PENDING.due(time.monotonic()))
        taken = _PENDING.take(time.monotonic())
        if taken is None:
            return
        await keep_trace(js, taken[1], taken[0])


def _trace_later(js: JetStreamContext, last: dict[str, Any]) -> None:
    """Fold ``last`` into the pending trace and make sure a background write takes it (within :data:`TRACE_EVERY`
    s). Outside an event loop nothing is written (the message is counted on /metrics)."""
    global _writer
    _PENDING.add(last)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if _writer is None or _writer.done() or _writer.get_loop() is not loop:
        _writer = loop.create_task(_write_pending(js))


async def keep_trace(js: JetStreamContext, last: dict[str, Any], counts: dict[str, int] | None = None) -> bool:
    """Count the terminated poison messages ``counts`` (reason → how many; default: ``last``'s one) and make
    ``last`` (:func:`sample`) the trace's last one. Returns whether it was written; never raises (a failure is
    logged: the messages are terminated and counted on /metrics)."""
    counts = counts if counts is not None else {last["reason"]: 1}
    return await change_key(js, KEY, lambda value: _folded(value, last, counts), "keep the trace of a poison message")


async def reported(js: JetStreamContext, last: dict[str, Any], poison: NotAnAd, metrics: WorkerMetrics | None,
                   then: str) -> None:
    """Say that the poison message ``last`` (:func:`sample`) is settled: an ERROR line with its stream sequence,
    why, and ``then`` (what is done with it), at most one per :data:`LINE_EVERY` s (the next says how many were
    left out), a count on the worker's /metrics by its reason (``metrics`` None: the module's switch,
    :func:`~gamead_core.telemetry.metrics.count_poison`), its trace kept in the background, at most one write per
    :data:`TRACE_EVERY` s (:class:`Pending`). Never raises; never waits for the trace."""
    left_out = _LINES.allow("poison", time.monotonic())
    if left_out is not None:
        more = f" ({left_out} more since the last such line, counted in gamead_poison_messages_total)" if left_out else ""
        log.error("work-stream message %d on %s (%d bytes) is not an ad: %s; %s (reason %s)%s", last["seq"],
                  quoted(last["subject"]), last["size"], poison.why, then, poison.reason, more,
                  extra={"poison_reason": poison.reason, "stream_seq": last["seq"]})
    if metrics is not None:
        metrics.poison(poison.reason)
    else:
        count_poison(poison.reason)
    _trace_later(js, last)


async def terminate(msg: Msg, poison: NotAnAd, js: JetStreamContext, metrics: WorkerMetrics,
                    shielded: Callable[[Awaitable[Any]], Awaitable[Any]]) -> None:
    """Settle the poison delivery ``msg``: without a delivery limit it would come back for ever, so it is
    terminated (``term``, through ``shielded``) first, then :func:`reported`. Never raises (a ``term`` not sent
    brings it back after ``queue.ack_wait``, to be refused again)."""
    last = sample(msg, poison.reason, poison.why, clock.now())
    try:
        await shielded(msg.term())
    except Exception as exc:  # noqa: BLE001 - it comes back after ack_wait and is refused again
        log.warning("could not terminate message %d: %s", msg.metadata.sequence.stream, error_text(exc))
    await reported(js, last, poison, metrics, "terminated it")


async def read_trace(js: JetStreamContext) -> dict[str, Any] | None:
    """The trace (``{"count", "byReason", "last"}``), or None when no poison message was ever terminated or it
    cannot be read as one. Raises NATS errors."""
    try:
        entry = await scaling_bucket(js).get(KEY)
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
        return None
    try:
        trace = orjson.loads(entry.value or b"")
    except ValueError:
        return None
    return trace if isinstance(trace, dict) and isinstance(trace.get("last"), dict) else None


__all__ = ["HEAD_BYTES", "KEY", "LINE_EVERY", "MAX_HEADERS", "MAX_VALUE", "TRACE_EVERY", "Pending", "keep_trace", "printable", "raw_sample", "read_trace",
           "reported", "sample", "terminate"]
