"""Does JetStream still store writes? Each API node's storage probe, for ``/readyz``.

Every ``api.storage_probe_interval`` seconds (every second while failing, and at once when poked after one of
the node's own writes failed) the node puts one small value under its own key in bucket ``gamead_health``
(file storage, replicated like the ad records). The put either succeeds (storage ``ok``) or fails:

* JetStream answers 503 "insufficient resources" (10023) or another store error: the server's
  ``max_file_store`` or the account's storage limit is reached (``failing: JetStream could not store …``);
* JetStream does not answer at all: on a full disk nats-server logs ``no space left on device``, stops
  answering writes to that stream and marks it with a write error until it restarts (``failing: NATS did not
  answer in time``).

The probe bucket is not the work stream, and nats-server keeps a write error per stream: on a full disk the
work stream can be dead to writes while the probe's small puts still fit. So the node's own writes count too
(:meth:`StorageProbe.observe_write`): a submit whose publish JetStream did not answer, or refused for storage,
while the connection is up, marks the work stream ``failing`` until a later publish succeeds, the connection is
re-established (nats-server restarted: the one thing that clears a stream's write error on a single server) or,
once :data:`WRITE_FAILURE_HOLD` seconds have passed, a **write check** stores a message again (:func:`writes_stored`:
one empty message on a subject no consumer reads, in each work stream and in the ad bucket, purged at once; a
cluster moves a stream to another leader by itself, and a refusal past a limit clears when space is freed). Until
then the check stays ``failing``: on a full disk nats-server answers header checks (``Nats-Expected-…``) and stream
info as usual but never answers a write to the marked stream, so only a write tells (a drill saw ``/readyz`` turn
``ready`` 15 s after the last failed submit, while every submit still failed).

The check is stale by at most one interval plus ``nats.request_timeout``. It recovers by itself as soon as
writes succeed again; what an operator frees or restarts is in the README ("Operating it").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import GameadError, QueueUnavailable
from gamead_core.queue.connection import nats_boundary

log = logging.getLogger(__name__)

#: Seconds between probes while storage is failing (recovery is noticed within about this).
FAILING_INTERVAL = 1.0
#: Least seconds between two probes, however often the probe is poked.
MIN_GAP = 0.5

#: Seconds a failed submit-path write keeps the storage check failing before a write check may clear it (unless a
#: submit's write succeeds or NATS reconnects first).
WRITE_FAILURE_HOLD = 15.0
#: The last subject token of the write check's messages in each work stream (no consumer filters on it) and its key
#: in the ad bucket (never an ad id: those are 26 base-32 characters or a ``k``-prefixed hash).
CHECK_TOKEN = "storage-check"

_KEY_UNSAFE = re.compile(r"[^-/_=.a-zA-Z0-9]")


def probe_key(node_id: str) -> str:
    """A valid KV key for ``node_id`` (ADR-8 keys: ``[-/_=.a-zA-Z0-9]+``; anything else becomes ``_``)."""
    return _KEY_UNSAFE.sub("_", node_id) or "_"


class StorageProbe:
    """One API node's probe. ``state`` is ``unknown`` (no probe yet), ``ok`` or ``failing``."""

    def __init__(self, js: JetStreamContext, node_id: str, *, interval: float, timeout: float,
                 on_failure: Callable[[GameadError], None] | None = None,
                 write_check: Callable[[], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._kv = KeyValue(name=names.HEALTH_BUCKET, stream=names.kv_stream(names.HEALTH_BUCKET),
                            pre=names.kv_prefix(names.HEALTH_BUCKET), js=js, direct=False)
        self._key = probe_key(node_id)
        self.interval = interval
        self.timeout = timeout
        self._on_failure = on_failure
        self._clock = clock
        self.state = "unknown"
        self.detail: str | None = None
        self.since = clock()  #: when the current state began
        self.probes = 0
        self._last = 0.0
        self._wake = asyncio.Event()
        self._write_failure: tuple[float, str] | None = None  #: (when, why) the node's last write failed
        #: ``write_check()`` returns once a write is stored again (raises ``GameadError`` if not): what clears a held
        #: write failure after :data:`WRITE_FAILURE_HOLD`; without one (tests of the rule), the hold's end does
        self._write_check = write_check
        self._check_failed: str | None = None  #: why the last write check failed

    def poke(self) -> None:
        """Probe now (a write of this node just failed: is it storage?)."""
        self._wake.set()

    def observe_write(self, error: GameadError | None) -> None:
        """Count one of the node's own writes to the work stream: ``None`` if JetStream stored it, else the
        error (only storage failures and unanswered writes count; call it while the connection is up)."""
        if error is None:
            if self._write_failure is not None:
                log.info("writes to the work stream succeed again")
            self._write_failure = self._check_failed = None
            return
        first = self._write_failure is None
        self._write_failure = (self._clock(), error.message)
        if first:
            log.error("a write to the work stream failed: %s", error.message, extra={"error_code": error.code})
        self.poke()

    def reconnected(self) -> None:
        """The connection to NATS was re-established (a restarted nats-server clears its write errors)."""
        self._write_failure = self._check_failed = None

    def _failed_write(self) -> str | None:
        if self._write_failure is None:
            return None
        at, why = self._write_failure
        if self._write_check is None and self._clock() - at > WRITE_FAILURE_HOLD:
            self._write_failure = None
            return None
        check = f"; a write check failed too: {self._check_failed}" if self._check_failed else ""
        return f"a submit's write to the work stream failed {self._clock() - at:.0f} s ago: {why}{check}"

    def _check_due(self) -> bool:
        return (self._write_check is not None and self._write_failure is not None
                and self._clock() - self._write_failure[0] > WRITE_FAILURE_HOLD)

    async def check_writes(self) -> bool:
        """Run the write check (past the hold of a failed write): True, and the failure cleared, if a write was
        stored again. Never raises."""
        assert self._write_check is not None
        try:
            await self._write_check()  # each of its requests has its own timeout
        except asyncio.TimeoutError:
            self._check_failed = "NATS did not answer in time"
            return False
        except GameadError as exc:
            self._check_failed = exc.message
            return False
        if self._write_failure is not None:
            log.info("writes are stored again (a write check to the work streams and the ad bucket)")
        self._write_failure = self._check_failed = None
        return True

    async def probe_once(self) -> bool:
        """One probe write; True if JetStream stored it. Never raises."""
        self._last = self._clock()
        self.probes += 1
        try:
            with nats_boundary():
                await asyncio.wait_for(self._kv.put(self._key, f"{time.time():.3f}".encode()), self.timeout)
        except asyncio.TimeoutError:  # wait_for's own timeout (the put's is translated inside)
            self._set("failing", QueueUnavailable("NATS did not answer in time"))
            return False
        except GameadError as exc:
            self._set("failing", exc)
            return False
        except nats.errors.Error as exc:  # pragma: no cover - nats_boundary translates these
            self._set("failing", QueueUnavailable(f"NATS error: {type(exc).__name__}"))
            return False
        self._set("ok", None)
        return True

    def _set(self, state: str, error: GameadError | None) -> None:
        detail = error.message if error is not None else None
        if state != self.state:
            self.since = self._clock()
            if state == "failing":
                log.error("storage probe failing: JetStream did not store a write: %s", detail,
                          extra={"probe_key": self._key, "error_code": error.code if error else None})
            elif self.state == "failing":
                log.info("storage probe ok again: JetStream stores writes", extra={"probe_key": self._key})
        self.state, self.detail = state, detail
        if error is not None and self._on_failure is not None:
            self._on_failure(error)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every ``interval`` seconds (every second while failing, sooner when poked). Never raises."""
        while not stop.is_set():
            await self.probe_once()
            if self._check_due():
                await self.check_writes()
            failing = self.state == "failing" or self._write_failure is not None
            wait = FAILING_INTERVAL if failing else self.interval
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            _, pending = await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            self._wake.clear()
            gap = MIN_GAP - (self._clock() - self._last)
            if gap > 0 and not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), gap)
                except asyncio.TimeoutError:
                    pass

    def readiness(self) -> str:
        """``/readyz``'s ``storage`` check: ``ok``, ``unknown: …`` or ``failing: <why>``."""
        if self.state == "failing":
            return f"failing: {self.detail} (for {self._clock() - self.since:.0f} s)"
        if failed := self._failed_write():
            return f"failing: {failed}"
        if self.state == "unknown":
            return "unknown: no probe write yet"
        return "ok"

    def status(self) -> dict[str, object]:
        """The ``storage`` section of ``/v1/stats``."""
        failed = self._failed_write()
        return {"state": "failing" if failed else self.state, "probe": self.state, "detail": self.detail,
                "forSeconds": round(self._clock() - self.since, 1), "lastFailedWrite": failed,
                "probeIntervalSeconds": self.interval, "probes": self.probes}


async def writes_stored(js: JetStreamContext, partitions: int, timeout: float) -> None:
    """Store one empty message in each work stream (``<partition's prefix>.storage-check``, a subject no
    consumer filters on) and in the ad bucket (key ``storage-check``, never an ad id), and purge that subject
    at once (the bucket denies deleting one message, not a purge by subject; no marker is left, and readers skip
    an empty value meanwhile). Returns when every write was stored; raises
    :class:`~gamead_core.errors.GameadError` (through ``nats_boundary``) or ``asyncio.TimeoutError`` when one
    was not. ``timeout``: seconds per publish."""
    targets = [(names.work_stream(p), f"{names.work_subject_prefix(p)}.{CHECK_TOKEN}") for p in range(partitions)]
    targets.append((names.ADS_BUCKET_STREAM, names.kv_subject(names.ADS_BUCKET, CHECK_TOKEN)))
    if not js._nc.is_connected:  # a publish would wait in the reconnect buffer and be stored after the check
        raise QueueUnavailable("NATS is not connected")
    with nats_boundary():
        for stream, subject in targets:
            try:
                await js.publish(subject, b"", timeout=timeout, stream=stream)
            finally:  # also after a timeout: a write stored late is purged too (by subject: every earlier one)
                with contextlib.suppress(Exception):
                    await js.purge_stream(stream, subject=subject)
