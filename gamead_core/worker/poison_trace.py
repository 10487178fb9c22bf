"""The trace a terminated poison message leaves (:mod:`gamead_core.worker.poison`), for an operator to find later.

One key, :data:`KEY` of the ``gamead_scaling`` bucket (one value per key: ``history`` 1), rewritten by
compare-and-set for each poison message a worker terminates: how many in all and per reason since the stack was
made, and the *last* one (when, which stream, sequence and subject, its size, up to :data:`MAX_HEADERS` headers cut
to :data:`MAX_VALUE` characters, its first :data:`HEAD_BYTES` bytes, printable ASCII with ``\\xNN`` escapes). So a
flood of poison costs one write each and one value of at most ~30 KB on disk, never more. ``gamead doctor`` reads it
(note ``poison_terminated``, :func:`read_trace`); each worker's ``/metrics`` counts what it terminated itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import error_text
from gamead_core.models import utc_iso
from gamead_core.telemetry.metrics import WorkerMetrics, count_poison
from gamead_core.worker.poison import NotAnAd, quoted

log = logging.getLogger(__name__)

KEY = "poison.last"  #: the trace's key in :data:`gamead_core.names.SCALING_BUCKET`
MAX_HEADERS = 16  #: headers kept of the last message
MAX_VALUE = 200  #: characters kept of each header name and value, of its subject and of the reason
HEAD_BYTES = 200  #: bytes of the body kept (escaped)
_TRIES = 10


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


def _bucket(js: JetStreamContext) -> KeyValue:
    return KeyValue(name=names.SCALING_BUCKET, stream=names.kv_stream(names.SCALING_BUCKET),
                    pre=names.kv_prefix(names.SCALING_BUCKET), js=js, direct=False)


def _folded(value: bytes | None, last: dict[str, Any]) -> bytes:
    try:
        old = orjson.loads(value or b"{}")
        count = int(old.get("count", 0))
        by_reason = {str(k): int(v) for k, v in dict(old.get("byReason", {})).items()}
    except (ValueError, TypeError, AttributeError):
        count, by_reason = 0, {}
    by_reason[last["reason"]] = by_reason.get(last["reason"], 0) + 1
    return orjson.dumps({"count": count + 1, "byReason": by_reason, "last": last})


async def keep_trace(js: JetStreamContext, last: dict[str, Any]) -> bool:
    """Count one terminated poison message and make ``last`` (:func:`sample`) the trace's last one. Returns whether
    it was written; never raises (a failure is logged: the message is terminated and counted on /metrics)."""
    kv = _bucket(js)
    for _ in range(_TRIES):
        try:
            try:
                entry = await kv.get(KEY)
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                await kv.create(KEY, _folded(None, last))
                return True
            await kv.update(KEY, _folded(entry.value, last), last=entry.revision)
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            continue
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            log.warning("could not keep the trace of a poison message (%s): %s", KEY, error_text(exc))
            return False
    log.warning("could not keep the trace of a poison message (%s): it kept changing", KEY)
    return False


async def reported(js: JetStreamContext, last: dict[str, Any], poison: NotAnAd, metrics: WorkerMetrics | None,
                   then: str) -> None:
    """Say that the poison message ``last`` (:func:`sample`) is settled: one ERROR line with its stream sequence,
    why, and ``then`` (what is done with it), a count on the worker's /metrics by its reason (``metrics`` None:
    the module's switch, :func:`~gamead_core.telemetry.metrics.count_poison`), its trace kept (:func:`keep_trace`).
    Never raises."""
    log.error("work-stream message %d on %s (%d bytes) is not an ad: %s; %s (reason %s)", last["seq"],
              quoted(last["subject"]), last["size"], poison.why, then, poison.reason,
              extra={"poison_reason": poison.reason, "stream_seq": last["seq"]})
    if metrics is not None:
        metrics.poison(poison.reason)
    else:
        count_poison(poison.reason)
    await keep_trace(js, last)


async def terminate(msg: Msg, poison: NotAnAd, js: JetStreamContext, metrics: WorkerMetrics,
                    shielded: Callable[[Awaitable[Any]], Awaitable[Any]]) -> None:
    """Settle the poison delivery ``msg``: without a delivery limit it would come back for ever, so it is
    terminated (``term``, through ``shielded``) once it is :func:`reported`. Never raises (a ``term`` not sent
    brings it back after ``queue.ack_wait``, to be refused again)."""
    await reported(js, sample(msg, poison.reason, poison.why, time.time()), poison, metrics, "terminating it")
    try:
        await shielded(msg.term())
    except Exception as exc:  # noqa: BLE001 - it comes back after ack_wait and is refused again
        log.warning("could not terminate message %d: %s", msg.metadata.sequence.stream, error_text(exc))


async def read_trace(js: JetStreamContext) -> dict[str, Any] | None:
    """The trace (``{"count", "byReason", "last"}``), or None when no poison message was ever terminated or it
    cannot be read as one. Raises NATS errors."""
    try:
        entry = await _bucket(js).get(KEY)
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
        return None
    try:
        trace = orjson.loads(entry.value or b"")
    except ValueError:
        return None
    return trace if isinstance(trace, dict) and isinstance(trace.get("last"), dict) else None


__all__ = ["HEAD_BYTES", "KEY", "MAX_HEADERS", "MAX_VALUE", "keep_trace", "printable", "raw_sample", "read_trace",
           "reported", "sample", "terminate"]
